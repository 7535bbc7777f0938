"""Upstream MDM checkpoints: resolving ``--mdm_ckpt``, reading args.json, loading weights.

An upstream checkpoint is a folder written by upstream's train/train_mdm.py and TrainLoop.save:
``args.json`` (every training flag) beside ``modelNNNNNNNNN.pt``, which holds either a plain state
dict or, when trained with ``--use_ema``, ``{'model': state_dict, 'model_avg': state_dict}``;
CLIP's weights are never saved. ``load_upstream_checkpoint`` rebuilds the network from args.json
through upstream's own ``utils.model_util`` (``get_model_args``, ``create_model_and_diffusion``)
and loads the weights with checks that name the file and the fix instead of upstream's bare
asserts (``load_model_wo_clip``). It runs before any LoRA injection: peft renames base weights
(``...base_layer.weight``), which no upstream checkpoint contains.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from mdm_kinemic.mdm.model.build import (
    ARCHES,
    DATASET_FEATURES,
    DATASET_NAMES,
    DATASETS,
    build_upstream_model,
)
from mdm_kinemic.mdm.upstream.locate import (
    import_upstream,
    locate_upstream,
    resolve_user_path,
)

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "UpstreamCheckpoint",
    "args_path_for",
    "latest_model_file",
    "load_upstream_checkpoint",
    "load_weights",
    "read_checkpoint_args",
    "read_state_dict",
    "resolve_checkpoint",
    "upstream_default_args",
]

logger = logging.getLogger(__name__)

# fixed sinusoid tables: upstream's load_model_wo_clip drops them (older models have other lengths)
_FIXED_BUFFERS = ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe")
_INPUT_WEIGHT = "input_process.poseEmbedding.weight"
_FIX_DOWNLOAD = (
    "download a released model as upstream's README says (e.g. humanml_trans_enc_512) and unzip it "
    "into <mdm_root>/save/, or for a dry run make a random one with "
    "`python -m mdm_kinemic.mdm.checkpoints.random_checkpoint --like humanml_trans_enc_512 --out DIR`"
)


class CheckpointError(ValueError):
    """An upstream checkpoint or its args.json that cannot be used; the message names the file."""


class CheckpointNotFoundError(FileNotFoundError):
    """``--mdm_ckpt`` matches no file, folder or name under upstream's save/."""


class UpstreamCheckpoint(NamedTuple):
    """A loaded upstream checkpoint: ``model`` (upstream MDM or the requested subclass, eval mode),
    ``diffusion`` (upstream SpacedDiffusion) and ``args`` (argparse.Namespace of upstream's flags
    from args.json; ``args.model_path`` is the absolute checkpoint file)."""

    model: torch.nn.Module
    diffusion: object
    args: argparse.Namespace


def _step(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def latest_model_file(folder: str | os.PathLike) -> Path | None:
    """The ``model*.pt`` with the highest step number in ``folder`` (upstream names them
    ``model%09d.pt``), or None when there is none."""
    candidates = [p for p in Path(folder).glob("model*.pt") if p.is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (_step(p), p.name))


def resolve_checkpoint(spec: str | os.PathLike, mdm_root: str | os.PathLike | None = None) -> Path:
    """Turn ``--mdm_ckpt`` into a checkpoint file.

    Args:
        spec: a ``.pt`` file; a folder (its latest ``model*.pt``); or a bare name looked up as
            ``<mdm_root>/save/NAME/`` (e.g. ``humanml_trans_enc_512``). Relative paths are taken
            against the current directory.
        mdm_root: upstream root for bare names (None: ``$MDM_ROOT``, then the submodule).

    Returns:
        Absolute path of the checkpoint file.

    Raises:
        CheckpointNotFoundError: nothing matches; the message lists the paths tried and the fix.
    """
    text = os.fspath(spec)
    path = resolve_user_path(text)
    tried = [path]
    if path.is_file():
        return path
    if path.is_dir():
        found = latest_model_file(path)
        if found is None:
            raise CheckpointNotFoundError(f"Checkpoint folder {path} holds no model*.pt file. Fix: {_FIX_DOWNLOAD}.")
        return found
    is_bare_name = text and os.sep not in text and "/" not in text and not text.endswith(".pt")
    if is_bare_name:
        try:
            folder = locate_upstream(mdm_root) / "save" / text
        except FileNotFoundError:
            folder = None
        if folder is not None:
            tried.append(folder)
            found = latest_model_file(folder) if folder.is_dir() else None
            if found is not None:
                return found
    places = " or ".join(str(p) for p in tried)
    raise CheckpointNotFoundError(f"MDM checkpoint {text!r} not found (tried {places}). Fix: {_FIX_DOWNLOAD}.")


def args_path_for(ckpt_path: str | os.PathLike) -> Path:
    """``args.json`` beside a checkpoint file (upstream utils/parser_util.py load_args_from_model)."""
    return Path(ckpt_path).parent / "args.json"


def upstream_default_args() -> argparse.Namespace:
    """Upstream's defaults for the base, dataset, model and diffusion flag groups
    (utils/parser_util.py), the values upstream falls back to for keys an older args.json lacks."""
    import_upstream()
    from utils import parser_util

    parser = argparse.ArgumentParser(add_help=False)
    parser_util.add_base_options(parser)
    parser_util.add_data_options(parser)
    parser_util.add_model_options(parser)
    parser_util.add_diffusion_options(parser)
    return parser.parse_args([])


def read_args_json(ckpt_path: str | os.PathLike) -> dict:
    """The args.json beside a checkpoint file, as written (upstream's flags; KineMIC
    checkpoints add their "kinemic" section).

    Raises:
        CheckpointError: args.json missing, not JSON, or not a JSON object.
    """
    path = args_path_for(ckpt_path)
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing: a checkpoint ({Path(ckpt_path).name}) needs the args.json it "
            f"was trained with beside it. Fix: copy that args.json (it is in the released zip, or in the "
            f"training --save_dir) into {path.parent}."
        )
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not readable JSON ({err}). Fix: restore the args.json saved with the checkpoint.") from err
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} holds a JSON {type(saved).__name__}, not an object of training flags.")
    return saved


def read_checkpoint_args(ckpt_path: str | os.PathLike) -> argparse.Namespace:
    """Read the args.json beside a checkpoint into upstream's flag namespace.

    Starts from ``upstream_default_args``, sets every key of args.json, then applies upstream's
    compatibility rules (``cond_mode`` of old files -> ``unconstrained``; ``apply_rules``).

    Args:
        ckpt_path: the checkpoint file.

    Returns:
        argparse.Namespace with upstream's attributes (dataset, arch, layers, latent_dim, ...).

    Raises:
        CheckpointError: args.json missing, not JSON, or with an unknown arch or dataset.
    """
    import_upstream()
    from utils.parser_util import apply_rules

    path = args_path_for(ckpt_path)
    saved = read_args_json(ckpt_path)
    args = upstream_default_args()
    for key, value in saved.items():
        setattr(args, key, value)
    if "unconstrained" not in saved and "cond_mode" in saved:
        args.unconstrained = saved["cond_mode"] == "no_cond"
    if args.arch not in ARCHES:
        raise CheckpointError(
            f"{path}: arch {args.arch!r} is not an upstream MDM architecture; accepted values are "
            f"{list(ARCHES)}. Fix: use the args.json saved with this checkpoint."
        )
    if args.dataset not in DATASETS:
        raise CheckpointError(
            f"{path}: dataset {args.dataset!r} is unknown to upstream MDM; accepted values are {list(DATASETS)}."
        )
    return apply_rules(args)


def read_state_dict(ckpt_path: str | os.PathLike, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """Read an upstream checkpoint's weights (plain or EMA format), on CPU.

    Args:
        ckpt_path: ``model*.pt``.
        use_ema: take ``model_avg`` from an EMA checkpoint (upstream's ``--use_ema`` at sampling);
            plain checkpoints ignore it.

    Returns:
        state dict (without CLIP; upstream never saves it).

    Raises:
        CheckpointError: unreadable (missing, truncated, not a torch file) or not a state dict.
    """
    path = Path(ckpt_path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"Checkpoint {path} does not exist. Fix: {_FIX_DOWNLOAD}.") from err
    except Exception as err:  # truncated zip, pickle and format errors all mean "unreadable" here
        raise CheckpointError(
            f"Checkpoint {path} is unreadable ({type(err).__name__}: {err}); it is probably truncated "
            f"(an interrupted download or copy). Fix: download or copy it again; {_FIX_DOWNLOAD}."
        ) from err
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        key = "model_avg" if use_ema and isinstance(loaded.get("model_avg"), Mapping) else "model"
        logger.info("checkpoint %s: EMA format, loading %r", path, key)
        loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(
            f"Checkpoint {path} is not an upstream MDM checkpoint (expected a state dict or "
            f"{{'model', 'model_avg'}} of state dicts)."
        )
    return dict(loaded)


def _width_hint(width: int) -> str:
    names = [DATASET_NAMES[d] for d, w in DATASET_FEATURES.items() if w == width]
    return f"{width} ({' / '.join(names)})" if names else str(width)


def load_weights(
    model: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    ckpt_path: str | os.PathLike,
    *,
    allow_missing: Sequence[str] = (),
) -> None:
    """Load upstream weights into a freshly built MDM, checking what upstream only asserts.

    Same rules as upstream's ``load_model_wo_clip``: the sinusoid tables are not loaded; CLIP's
    weights may be missing; nothing else may be missing or extra. Call before LoRA injection.

    Args:
        model: upstream MDM or subclass (no adapters injected yet).
        state_dict: from ``read_state_dict``.
        ckpt_path: the file the weights came from (named in errors).
        allow_missing: key prefixes the checkpoint may lack (modules a subclass adds).

    Raises:
        CheckpointError: shape mismatch (e.g. KIT's 251 vs HumanML3D's 263 features, or another
            latent_dim / layers than args.json says), keys missing or unexpected.
    """
    path, args_file = Path(ckpt_path), args_path_for(ckpt_path)
    weights = {k: v for k, v in state_dict.items() if k not in _FIXED_BUFFERS}
    own = model.state_dict()
    if _INPUT_WEIGHT in weights and _INPUT_WEIGHT in own:
        have, want = weights[_INPUT_WEIGHT].shape[-1], own[_INPUT_WEIGHT].shape[-1]
        if have != want:
            raise CheckpointError(
                f"Checkpoint {path} takes {_width_hint(have)} motion features per frame, but the model built "
                f"from {args_file} takes {_width_hint(want)}. Fix: use the args.json saved with this checkpoint "
                f"(its 'dataset' must match the weights)."
            )
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in weights.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise CheckpointError(
            f"Checkpoint {path} does not match the network described by {args_file} "
            f"({'; '.join(mismatched[:3])}{'; ...' if len(mismatched) > 3 else ''}). "
            "Fix: use the args.json saved with this checkpoint (latent_dim, layers, arch, dataset)."
        )
    unexpected = sorted(set(weights) - set(own))
    if unexpected:
        hint = (
            " The model has LoRA adapters already: load the checkpoint before injecting them."
            if any("base_layer" in k or "lora_" in k for k in own)
            else " Fix: use the args.json saved with this checkpoint."
        )
        raise CheckpointError(
            f"Checkpoint {path} has weights the model built from {args_file} lacks: {unexpected[:5]}.{hint}"
        )
    exempt = ("clip_model.", *allow_missing)
    missing = sorted(
        k for k in set(own) - set(weights) if not k.startswith(exempt) and "sequence_pos_encoder" not in k
    )
    if missing:
        raise CheckpointError(
            f"Checkpoint {path} lacks weights the model built from {args_file} needs: {missing[:5]}. "
            "Fix: use the args.json saved with this checkpoint."
        )
    model.load_state_dict(weights, strict=False)


def load_upstream_checkpoint(
    spec: str | os.PathLike,
    *,
    mdm_root: str | os.PathLike | None = None,
    clip_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    use_ema: bool | None = None,
    expected_features: int | None = None,
    model_cls: type | None = None,
    model_kwargs: Mapping | None = None,
    num_actions: int | None = None,
    allow_missing: Sequence[str] = (),
) -> UpstreamCheckpoint:
    """Resolve, build and load an upstream MDM checkpoint (before any LoRA injection).

    Args:
        spec: ``--mdm_ckpt``: file, folder, or name under ``<mdm_root>/save/`` (``resolve_checkpoint``).
        mdm_root: ``--mdm_root`` (``import_upstream``).
        clip_weights: ``--clip_weights`` for the model's CLIP (path or ``"random"``).
        device: where the model goes (upstream's ``MDM.to`` returns None; the model is moved in place).
        use_ema: load ``model_avg`` of an EMA checkpoint; None follows args.json's ``use_ema``
            as upstream's samplers do.
        expected_features: motion feature width of the user's data (263 for HumanML3D hml_vec,
            251 for KIT); None skips the check.
        model_cls, model_kwargs, num_actions, allow_missing: build a subclass (see
            ``build_upstream_model`` and ``load_weights``).

    Returns:
        UpstreamCheckpoint(model in eval mode, diffusion, args).

    Raises:
        UpstreamNotFoundError, CheckpointNotFoundError, CheckpointError: with the file and the fix;
        CLIPWeightsNotFoundError / CLIPWeightsError: CLIP weights (text-conditioned models).
    """
    import_upstream(mdm_root, clip_weights=clip_weights)
    path = resolve_checkpoint(spec, mdm_root)
    args = read_checkpoint_args(path)
    width = DATASET_FEATURES[args.dataset]
    if expected_features is not None and width != expected_features:
        raise CheckpointError(
            f"Checkpoint {path} is a {DATASET_NAMES[args.dataset]} model ({_width_hint(width)} features per "
            f"frame, per {args_path_for(path)}), but the data has {_width_hint(expected_features)}. Fix: use a "
            "checkpoint trained on the same representation (e.g. humanml_trans_enc_512 for HumanML3D's 263)."
        )
    state_dict = read_state_dict(path, use_ema=bool(getattr(args, "use_ema", False)) if use_ema is None else use_ema)
    model, diffusion = build_upstream_model(args, model_cls=model_cls, num_actions=num_actions, model_kwargs=model_kwargs)
    load_weights(model, state_dict, path, allow_missing=allow_missing)
    model.to(device)
    model.eval()
    args.model_path = str(path)
    if getattr(args, "random_weights", False):
        logger.warning("MDM checkpoint %s has RANDOM weights (random_checkpoint): for dry runs and tests only", path)
    logger.info("loaded upstream MDM %s (%s, %s, %d layers, latent %d)", path, args.dataset, args.arch, args.layers, args.latent_dim)
    return UpstreamCheckpoint(model, diffusion, args)
