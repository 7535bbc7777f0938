"""A stand-in for OpenAI's ``clip`` package, backed by open_clip, for upstream MDM.

Upstream's model/mdm.py does ``import clip`` at import time and uses exactly three things:
``clip.load(clip_version, device='cpu', jit=False) -> (model, preprocess)``,
``clip.model.convert_weights(model)`` (weights to fp16) and
``clip.tokenize(texts, context_length=..., truncate=True)``; the model's ``encode_text``.
``install()`` registers ``clip`` and ``clip.model`` modules offering those names (plus
``available_models``) in ``sys.modules``. ``import_upstream`` calls it only when OpenAI's own
package is not importable; where it is, upstream uses it unchanged.

The weights come from ``mdm_kinemic.text.clip.load_clip``: the source set with ``configure``
(``--clip_weights``), else ``$MDM_KINEMIC_CLIP_WEIGHTS``, else the local caches; never a download.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Sequence

import torch

from mdm_kinemic.text import clip as text_clip

__all__ = ["available_models", "configure", "configured_weights", "convert_weights", "install", "load", "tokenize"]

_MODEL_NAMES = ("ViT-B/32",)
_weights: str | os.PathLike | None = None


def configure(weights: str | os.PathLike | None) -> None:
    """Set the CLIP weights that ``clip.load`` uses (a path, ``"random"``, or None for the
    environment variable and the caches). Relative paths are made absolute now, against the
    current directory, so that a later change of directory cannot redirect them."""
    global _weights
    if weights is None or str(weights) == text_clip.RANDOM_WEIGHTS:
        _weights = weights
    else:
        _weights = os.path.abspath(os.path.expanduser(os.fspath(weights)))


def configured_weights() -> str | os.PathLike | None:
    """The weights source given to ``configure`` (None: environment variable, then caches)."""
    return _weights


def available_models() -> list[str]:
    """Model names ``load`` accepts, as OpenAI's ``clip.available_models``."""
    return list(_MODEL_NAMES)


def load(
    name: str = "ViT-B/32",
    device: str | torch.device = "cpu",
    jit: bool = False,
    download_root: str | None = None,
) -> tuple[torch.nn.Module, Callable]:
    """OpenAI's ``clip.load`` for ViT-B/32, from local weights.

    Args:
        name: ``"ViT-B/32"`` (what upstream MDM passes), or a path to a weight file (OpenAI's
            ``clip.load`` accepts paths too); a path overrides ``configure``.
        device: where the model goes; fp32 as OpenAI's ``clip.load`` gives on CPU.
        jit: must be False (upstream passes False; open_clip has no TorchScript model here).
        download_root: ignored; nothing is downloaded.

    Returns:
        (open_clip CLIP model, image preprocessing transform for 224 px images).

    Raises:
        ValueError: another model name, or jit=True.
        CLIPWeightsNotFoundError, CLIPWeightsError: from ``mdm_kinemic.text.clip.load_clip``.
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from open_clip.transform import image_transform

    if jit:
        raise ValueError("clip.load(jit=True) is not supported by mdm_kinemic's CLIP stand-in; pass jit=False")
    if name in _MODEL_NAMES:
        weights = _weights
    elif os.path.isfile(name):
        weights = name
    else:
        raise ValueError(
            f"clip.load({name!r}): mdm_kinemic's CLIP stand-in provides {list(_MODEL_NAMES)} or a weight "
            "file path; upstream MDM uses 'ViT-B/32'."
        )
    model = text_clip.load_clip(weights, device=device, precision="fp32")
    preprocess = image_transform(224, is_train=False, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    return model, preprocess


def tokenize(texts: str | Sequence[str], context_length: int = 77, truncate: bool = False) -> torch.Tensor:
    """OpenAI's ``clip.tokenize``: IntTensor [N, context_length]; see ``text.clip.tokenize``."""
    return text_clip.tokenize(texts, context_length=context_length, truncate=truncate)


def convert_weights(model: torch.nn.Module) -> None:
    """OpenAI's ``clip.model.convert_weights``: linear/conv, attention and projection weights to
    fp16 in place; embeddings and LayerNorms stay fp32 (open_clip's ``convert_weights_to_lp``)."""
    from open_clip.model import convert_weights_to_lp

    convert_weights_to_lp(model, dtype=torch.float16)


def install() -> types.ModuleType:
    """Register ``clip`` and ``clip.model`` in ``sys.modules``, backed by this module.

    Returns:
        The ``clip`` module registered.
    """
    package = types.ModuleType("clip", "mdm_kinemic's stand-in for OpenAI's clip package (open_clip backed)")
    submodule = types.ModuleType("clip.model", "mdm_kinemic's stand-in for OpenAI's clip.model")
    submodule.convert_weights = convert_weights
    package.__file__ = submodule.__file__ = __file__
    package.__path__ = []
    package.load = load
    package.tokenize = tokenize
    package.available_models = available_models
    package.model = submodule
    package.mdm_kinemic_stand_in = True
    sys.modules["clip"] = package
    sys.modules["clip.model"] = submodule
    return package
