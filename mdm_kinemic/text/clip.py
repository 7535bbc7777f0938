"""CLIP ViT-B/32 text features through open_clip, numerically as upstream MDM uses OpenAI CLIP.

Upstream MDM (model/mdm.py, ``clip_encode_text``) encodes captions with OpenAI's ``clip``
package: ``clip.tokenize(texts, context_length=22, truncate=True)`` for HumanML3D and KIT
(20 words plus the start and end tokens), zero-padded to CLIP's 77 positions, then
``clip_model.encode_text`` on a model whose weights went through ``clip.model.convert_weights``
(fp16). The text feature is read at the end-of-text token, found as the argmax of the token ids,
so the zero padding never moves it. This module reproduces that with open_clip, which builds the
same network (QuickGELU, LayerNorms computed in fp32) from OpenAI's weight file, and a tokenizer
with OpenAI's rules (special tokens written in the text, truncation, int32 ids).

Weights are never downloaded. They come from, in order: the ``weights`` argument (a path, or
``"random"``), the environment variable ``MDM_KINEMIC_CLIP_WEIGHTS``, then the local caches that
OpenAI's ``clip`` package and open_clip fill (``~/.cache/clip/ViT-B-32.pt``; the Hugging Face cache
entry of ``timm/vit_base_patch32_clip_224.openai``). ``"random"`` gives a deterministic randomly
initialised network for dry runs and tests, and logs a warning every time.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from mdm_kinemic.digest import file_sha256

__all__ = [
    "CLIP_WEIGHTS_ENV",
    "CONTEXT_LENGTH",
    "EOT_TOKEN",
    "HUMANML_CONTEXT_LENGTH",
    "RANDOM_WEIGHTS",
    "SOT_TOKEN",
    "CLIPWeightsError",
    "CLIPWeightsNotFoundError",
    "clip_cache_candidates",
    "encode_text",
    "load_clip",
    "resolve_clip_weights",
    "tokenize",
]

logger = logging.getLogger(__name__)

CLIP_WEIGHTS_ENV = "MDM_KINEMIC_CLIP_WEIGHTS"
RANDOM_WEIGHTS = "random"
CONTEXT_LENGTH = 77
# upstream model/mdm.py clip_encode_text: max_text_len 20 + start token + end token
HUMANML_CONTEXT_LENGTH = 22
SOT_TOKEN = 49406
EOT_TOKEN = 49407
TEXT_DIM = 512

_OPENAI_FILENAME = "ViT-B-32.pt"
_HF_REPO = "timm/vit_base_patch32_clip_224.openai"
#: sha256 of OpenAI's released ViT-B-32.pt, the folder name of its download address (OpenAI's
#: clip/clip.py checks the same digest); the only TorchScript archive loaded, since loading
#: TorchScript runs the code the archive holds
OPENAI_VIT_B32_SHA256 = "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
_HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# OpenAI's tokenizer (clip/simple_tokenizer.py) splits on this pattern, case-insensitively; the two
# special tokens written literally in a caption become the special ids.
_OPENAI_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
_SPECIAL_IDS = {"<|startoftext|>": SOT_TOKEN, "<|endoftext|>": EOT_TOKEN}

# (key, shape) pairs that identify OpenAI's ViT-B/32; the text tower must also have 12 blocks.
_VIT_B32_SHAPES = {
    "visual.conv1.weight": (768, 3, 32, 32),
    "visual.positional_embedding": (50, 768),
    "positional_embedding": (77, 512),
    "token_embedding.weight": (49408, 512),
    "ln_final.weight": (512,),
    "text_projection": (512, 512),
}
_TEXT_LAYERS = 12


class CLIPWeightsError(ValueError):
    """A CLIP weight file that is unreadable or holds a model other than OpenAI's ViT-B/32."""


class CLIPWeightsNotFoundError(FileNotFoundError):
    """No CLIP weights were given and none were found in the local caches."""


def clip_cache_candidates() -> list[Path]:
    """Local files that may hold OpenAI's ViT-B/32 weights, in the order they are tried.

    Returns:
        ``~/.cache/clip/ViT-B-32.pt`` (OpenAI's ``clip`` package and open_clip's URL downloads),
        then the Hugging Face cache files of ``timm/vit_base_patch32_clip_224.openai`` (open_clip's
        default source; honours ``HF_HOME`` / ``HF_HUB_CACHE``) where they exist. Nothing is
        downloaded.
    """
    candidates = [Path("~/.cache/clip").expanduser() / _OPENAI_FILENAME]
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return candidates
    for filename in _HF_FILENAMES:
        cached = try_to_load_from_cache(repo_id=_HF_REPO, filename=filename)
        if isinstance(cached, str):
            candidates.append(Path(cached))
    return candidates


def resolve_clip_weights(weights: str | os.PathLike | None = None) -> Path | str:
    """Decide where CLIP weights come from.

    Args:
        weights: a file path, ``"random"``, or None to use ``$MDM_KINEMIC_CLIP_WEIGHTS`` and then
            the local caches (see ``clip_cache_candidates``). Relative paths are made absolute
            against the current directory here, before anything changes directory.

    Returns:
        An absolute ``Path`` to an existing file, or the string ``"random"``.

    Raises:
        CLIPWeightsNotFoundError: the given or configured file does not exist, or nothing was
            given and the caches are empty; the message lists every place tried.
    """
    source = "the weights argument (--clip_weights)"
    if weights is None:
        weights = os.environ.get(CLIP_WEIGHTS_ENV) or None
        source = f"${CLIP_WEIGHTS_ENV}"
    if weights is not None:
        if str(weights) == RANDOM_WEIGHTS:
            return RANDOM_WEIGHTS
        path = Path(weights).expanduser().absolute()
        if not path.is_file():
            raise CLIPWeightsNotFoundError(
                f"CLIP weights file {path} (from {source}) does not exist. Give the path of OpenAI's "
                f"ViT-B-32.pt (or open_clip's open_clip_model.safetensors of {_HF_REPO}), or "
                f"'{RANDOM_WEIGHTS}' for a dry run with random text features."
            )
        return path
    tried = clip_cache_candidates()
    for path in tried:
        if path.is_file():
            return path
    places = "\n  ".join(str(p) for p in tried)
    raise CLIPWeightsNotFoundError(
        "No CLIP ViT-B/32 weights found. Tried --clip_weights (not given), "
        f"${CLIP_WEIGHTS_ENV} (not set) and the local caches:\n  {places}\n"
        f"Fix: download OpenAI's ViT-B-32.pt once on a connected machine (it is what "
        f"`python -c \"import clip; clip.load('ViT-B/32')\"` stores in ~/.cache/clip) and pass "
        f"--clip_weights /path/to/ViT-B-32.pt or set {CLIP_WEIGHTS_ENV}; for a dry run without "
        f"meaningful text features pass --clip_weights {RANDOM_WEIGHTS}."
    )


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a constants.pkl record (torch.save's have none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read OpenAI's TorchScript archive, a torch state dict or a safetensors file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise CLIPWeightsError(f"CLIP weights file {path} is unreadable ({err}); re-download it.") from err
    if _is_torchscript(path):
        # OpenAI's released ViT-B-32.pt is a TorchScript archive: accepted by its digest alone
        digest = file_sha256(path)
        if digest != OPENAI_VIT_B32_SHA256:
            raise CLIPWeightsError(
                f"CLIP weights file {path} is a TorchScript archive other than OpenAI's ViT-B-32.pt (sha256 "
                f"{digest}, expected {OPENAI_VIT_B32_SHA256}). Loading TorchScript runs the code it holds, so "
                "only OpenAI's file is read that way. Fix: pass OpenAI's ViT-B-32.pt, or save your weights as a "
                "state dict (torch.save(model.state_dict(), FILE)) or a safetensors file."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
            except RuntimeError as err:
                raise CLIPWeightsError(f"CLIP weights file {path} is an unreadable TorchScript archive ({err}); re-download it.") from err
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle or format errors all mean the same to the user
        raise CLIPWeightsError(
            f"CLIP weights file {path} is unreadable as a TorchScript archive, torch state dict or "
            f"safetensors file ({err}); it may be truncated: re-download OpenAI's ViT-B-32.pt."
        ) from err
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        # open_clip training checkpoints wrap the weights, with DataParallel's "module." prefix
        loaded = {k.removeprefix("module."): v for k, v in loaded["state_dict"].items()}
    if not isinstance(loaded, dict):
        raise CLIPWeightsError(f"CLIP weights file {path} holds a {type(loaded).__name__}, not a state dict.")
    return loaded


def _check_vit_b32(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Raise CLIPWeightsError naming the file unless it holds OpenAI's ViT-B/32 layout."""
    problems = [
        f"{key} has shape {tuple(state_dict[key].shape)}, expected {shape}"
        for key, shape in _VIT_B32_SHAPES.items()
        if key in state_dict and tuple(state_dict[key].shape) != shape
    ]
    problems += [f"{key} missing" for key in _VIT_B32_SHAPES if key not in state_dict]
    text_layers = {k.split(".")[2] for k in state_dict if k.startswith("transformer.resblocks.")}
    if len(text_layers) != _TEXT_LAYERS:
        problems.append(f"text transformer has {len(text_layers)} blocks, expected {_TEXT_LAYERS}")
    if problems:
        raise CLIPWeightsError(
            f"CLIP weights file {path} is not OpenAI's CLIP ViT-B/32, the text encoder upstream MDM "
            f"was trained with ({'; '.join(problems)}). Use OpenAI's ViT-B-32.pt or open_clip's "
            f"ViT-B-32 'openai' weights ({_HF_REPO})."
        )


def _vit_b32_config():
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=12, width=768, patch_size=32, image_size=224)
    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=512, heads=8, layers=_TEXT_LAYERS)
    return vision, text


@lru_cache(maxsize=1)
def _random_state_dict() -> dict[str, torch.Tensor]:
    """The random ViT-B/32 weights, identical in every process (seed 0, global RNG untouched)."""
    from open_clip.model import CLIP

    vision, text = _vit_b32_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(512, vision_cfg=vision, text_cfg=text, quick_gelu=True, cast_dtype=torch.float16)
    return {k: v.detach() for k, v in model.state_dict().items()}


def _build(state_dict: dict[str, torch.Tensor], path: Path | str) -> torch.nn.Module:
    """OpenAI's ViT-B/32 as open_clip builds it from OpenAI checkpoints (QuickGELU; cast_dtype fp16
    selects open_clip's LayerNormFp32, which matches OpenAI's LayerNorm once weights are fp16).

    The network is created on the meta device and takes the loaded tensors as they are: random
    initialisation of 151M parameters only to overwrite them costs seconds per load."""
    from open_clip.model import CLIP

    vision, text = _vit_b32_config()
    with torch.device("meta"):
        model = CLIP(512, vision_cfg=vision, text_cfg=text, quick_gelu=True, cast_dtype=torch.float16)
    # OpenAI's TorchScript archive stores these hyper-parameters beside the weights
    weights = {k: v for k, v in state_dict.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    try:
        model.load_state_dict(weights, assign=True)
    except RuntimeError as err:
        raise CLIPWeightsError(f"CLIP weights file {path} does not fit OpenAI's CLIP ViT-B/32: {err}") from err
    # the only non-persistent buffer: CLIP's causal text mask (additive, -inf above the diagonal)
    model.attn_mask = torch.full((CONTEXT_LENGTH, CONTEXT_LENGTH), float("-inf")).triu_(1)
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers())), "open_clip added a buffer"
    return model


def load_clip(
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    *,
    precision: str = "fp32",
) -> torch.nn.Module:
    """Load OpenAI's CLIP ViT-B/32 as an open_clip model, frozen and in eval mode.

    The network is built the way open_clip builds OpenAI checkpoints (QuickGELU, LayerNorm in fp32),
    which is the architecture of OpenAI's ``clip`` package used by upstream MDM.

    Args:
        weights: path to the weight file, ``"random"``, or None (``$MDM_KINEMIC_CLIP_WEIGHTS``, then
            the local caches; see ``resolve_clip_weights``).
        device: where the model goes.
        precision: ``"fp32"`` (as OpenAI's ``clip.load`` on CPU) or ``"fp16"`` (after
            ``clip.model.convert_weights``, as upstream MDM runs it: linear, attention and
            projection weights fp16; embeddings and LayerNorms fp32).

    Returns:
        ``open_clip.model.CLIP``; ``encode_text(tokens [N, 77]) -> [N, 512]``. With ``"random"``,
        models share their fp32 tensors with a per-process cache (seed 0): never modify a CLIP
        model's weights in place.

    Raises:
        CLIPWeightsNotFoundError: no weights at the given or default places.
        CLIPWeightsError: the file is unreadable or is not ViT-B/32.
        ValueError: unknown precision.
    """
    from open_clip.model import convert_weights_to_lp

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision={precision!r}: accepted values are 'fp32' and 'fp16'")
    resolved = resolve_clip_weights(weights)
    if resolved == RANDOM_WEIGHTS:
        logger.warning(
            "CLIP ViT-B/32 has RANDOM weights (--clip_weights random): text features carry no "
            "meaning; use this only for dry runs and tests."
        )
        # random models share the cached tensors (read-only by contract: CLIP stays frozen); copying
        # 600 MB per load costs seconds on a loaded machine
        model = _build(dict(_random_state_dict()), RANDOM_WEIGHTS)
    else:
        state_dict = _read_state_dict(resolved)
        _check_vit_b32(state_dict, resolved)
        logger.info("CLIP ViT-B/32 weights from %s", resolved)
        model = _build(state_dict, resolved)
    model = model.float()
    if precision == "fp16":
        convert_weights_to_lp(model, dtype=torch.float16)
    model.to(device)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


@lru_cache(maxsize=1)
def _bpe():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


@lru_cache(maxsize=1)
def _pattern():
    import regex

    return regex.compile(_OPENAI_PATTERN, regex.IGNORECASE)


def _encode(text: str) -> list[int]:
    """OpenAI's SimpleTokenizer.encode: ftfy + double html unescape, whitespace runs to one space,
    lower case, split on the pattern, byte-level BPE (open_clip ships OpenAI's BPE merges)."""
    import html

    import ftfy
    import regex

    bpe = _bpe()
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    text = regex.sub(r"\s+", " ", text).strip().lower()
    ids: list[int] = []
    for token in _pattern().findall(text):
        if token in _SPECIAL_IDS:
            ids.append(_SPECIAL_IDS[token])
            continue
        token = "".join(bpe.byte_encoder[b] for b in token.encode("utf-8"))
        ids.extend(bpe.encoder[piece] for piece in bpe.bpe(token).split(" "))
    return ids


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False) -> torch.Tensor:
    """Tokenise captions exactly as OpenAI's ``clip.tokenize``.

    Args:
        texts: one caption or a sequence of captions.
        context_length: positions per caption, start and end tokens included.
        truncate: cut captions that are too long, keeping the end token in the last position;
            otherwise raise.

    Returns:
        IntTensor [N, context_length] (int32, as OpenAI's): start token 49406, BPE ids, end
        token 49407, zeros after.

    Raises:
        RuntimeError: a caption is longer than ``context_length`` and ``truncate`` is False
            (OpenAI's behaviour and message).
    """
    if isinstance(texts, str):
        texts = [texts]
    result = torch.zeros(len(texts), context_length, dtype=torch.int)
    for i, text in enumerate(texts):
        tokens = [SOT_TOKEN, *_encode(text), EOT_TOKEN]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = EOT_TOKEN
        result[i, : len(tokens)] = torch.tensor(tokens)
    return result


def encode_text(model: torch.nn.Module, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
    """CLIP text features as upstream MDM computes them (model/mdm.py ``clip_encode_text``).

    Args:
        model: a CLIP from ``load_clip``.
        texts: N captions.
        context_length: None for CLIP's 77 positions (upstream's datasets other than HumanML3D
            and KIT), or a shorter length whose tokens are zero-padded to 77 (HumanML3D and KIT:
            ``HUMANML_CONTEXT_LENGTH`` = 22). Longer captions are truncated.

    Returns:
        Tensor [N, 512] float32, unnormalised, on the model's device, without gradient.

    Raises:
        ValueError: context_length outside 2..77.
    """
    if context_length is None:
        context_length = CONTEXT_LENGTH
    if not 2 <= context_length <= CONTEXT_LENGTH:
        raise ValueError(f"context_length={context_length}: accepted values are 2..{CONTEXT_LENGTH}")
    tokens = tokenize(list(texts), context_length=context_length, truncate=True)
    tokens = torch.nn.functional.pad(tokens, (0, CONTEXT_LENGTH - context_length))
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.encode_text(tokens.to(device)).float()
