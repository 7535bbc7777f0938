"""Building upstream's MDM (or a subclass) and its diffusion from upstream's flags.

The network is built through upstream's own ``utils.model_util`` (``get_model_args``,
``create_model_and_diffusion``), randomly initialised; loading weights is the job of
mdm/checkpoints/. Subclasses (KineMICMDM, the sentence-encoder MDM) take MDM's keyword arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
from collections.abc import Mapping
from types import SimpleNamespace

import torch

from mdm_kinemic.mdm.model.sentence_text import model_class_for
from mdm_kinemic.mdm.upstream.locate import import_upstream

__all__ = [
    "ARCHES",
    "DATASETS",
    "DATASET_FEATURES",
    "DATASET_NAMES",
    "DATASET_NUM_ACTIONS",
    "build_upstream_model",
    "upstream_model_kwargs",
]

logger = logging.getLogger(__name__)

ARCHES = ("trans_enc", "trans_dec", "gru")  # upstream utils/parser_util.py --arch choices
DATASETS = ("humanml", "kit", "humanact12", "uestc")  # upstream --dataset choices
# motion feature width per frame, upstream utils/model_util.py get_model_args (njoints * nfeats)
DATASET_FEATURES = {"humanml": 263, "kit": 251, "humanact12": 25 * 6, "uestc": 25 * 6}
# upstream data_loaders/a2m: HumanAct12Poses and UESTC num_actions; text datasets use a dummy 1
DATASET_NUM_ACTIONS = {"humanml": 1, "kit": 1, "humanact12": 12, "uestc": 40}
DATASET_NAMES = {"humanml": "HumanML3D", "kit": "KIT-ML", "humanact12": "HumanAct12", "uestc": "UESTC"}


def upstream_model_kwargs(args: argparse.Namespace, num_actions: int | None = None) -> dict:
    """MDM constructor arguments from upstream's ``utils.model_util.get_model_args``.

    Upstream reads only ``data.dataset.num_actions`` from its data loader; no dataset is needed.

    Args:
        args: from ``read_checkpoint_args``.
        num_actions: action classes; None for the dataset's own (``DATASET_NUM_ACTIONS``).

    Returns:
        dict for ``MDM(**kwargs)`` (njoints, nfeats, latent_dim, num_layers, cond_mode, ...).
    """
    import_upstream()
    from utils.model_util import get_model_args

    if num_actions is None:
        num_actions = DATASET_NUM_ACTIONS.get(args.dataset, 1)
    data = SimpleNamespace(dataset=SimpleNamespace(num_actions=num_actions))
    return get_model_args(args, data)


def _quiet_upstream(call, *a, **kw):
    """Run upstream code that prints progress ("TRANS_ENC init", ...), sending it to the log."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = call(*a, **kw)
    for line in buffer.getvalue().splitlines():
        logger.debug("upstream: %s", line)
    return result


def build_upstream_model(
    args: argparse.Namespace,
    *,
    model_cls: type | None = None,
    num_actions: int | None = None,
    model_kwargs: Mapping | None = None,
) -> tuple[torch.nn.Module, object]:
    """Build a randomly initialised upstream MDM (or subclass) and its diffusion from args.

    Text-conditioned models load CLIP through ``clip.load`` (the open_clip stand-in unless
    OpenAI's package is installed; weights as set by ``import_upstream(clip_weights=...)``).

    Args:
        args: upstream flags (``read_checkpoint_args``).
        model_cls: None for upstream's ``model.mdm.MDM`` via ``create_model_and_diffusion``;
            otherwise a subclass taking MDM's keyword arguments.
        num_actions: see ``upstream_model_kwargs``.
        model_kwargs: extra keyword arguments for ``model_cls`` (override upstream's).

    Returns:
        (model in train mode on CPU, upstream ``SpacedDiffusion``).
    """
    import_upstream()
    from utils.model_util import create_gaussian_diffusion, create_model_and_diffusion

    model_cls = model_class_for(args, model_cls)
    if model_cls is None and not model_kwargs:
        if num_actions is None:
            num_actions = DATASET_NUM_ACTIONS.get(args.dataset, 1)
        data = SimpleNamespace(dataset=SimpleNamespace(num_actions=num_actions))
        return _quiet_upstream(create_model_and_diffusion, args, data)
    if model_cls is None:
        from model.mdm import MDM as model_cls
    kwargs = {**upstream_model_kwargs(args, num_actions), **(model_kwargs or {})}
    model = _quiet_upstream(model_cls, **kwargs)
    return model, create_gaussian_diffusion(args)
