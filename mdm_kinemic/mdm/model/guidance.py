"""Classifier-free guidance for KineMIC's dual text + action condition (sampling only).

Upstream's ClassifierFreeSampleModel (utils/sampler_util.py) accepts a model whose cond_mode is
text or action, not both; the KineMIC student is conditioned on both, each dropped independently
in training, so its unconditional branch is "text and action both dropped" (y['uncond'] = True,
which KineMICMDM.forward honours for both). Guided prediction (Ho & Salimans 2022, as upstream):

    x0_guided = x0(x_t, t, null) + s * (x0(x_t, t, text, action) - x0(x_t, t, null))

with s = 2.5 by default (the paper's sampling setting, and upstream's --guidance_param default). The wrapper has upstream's model
interface, so upstream's ``GaussianDiffusion.p_sample_loop`` drives it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

DEFAULT_GUIDANCE_SCALE = 2.5


class DualConditionCFG(nn.Module):
    """Sampling wrapper: ``model(x, t, y)`` with classifier-free guidance over text + action.

    Args:
        model: a KineMICMDM, or the peft model around one (the student); anything whose
            ``forward(x, timesteps, y)`` honours y['uncond'] by dropping every condition.
        scale: guidance scale s used when y has no 'scale'; 1 gives the conditional prediction.

    Attributes copied from the wrapped model for upstream's sampling code: ``njoints``, ``nfeats``,
    ``data_rep``, ``cond_mode``, ``translation``, ``rot2xyz``, ``encode_text``.

    Raises:
        ValueError: scale is not a finite number.
    """

    def __init__(self, model: nn.Module, scale: float = DEFAULT_GUIDANCE_SCALE) -> None:
        super().__init__()
        if not torch.isfinite(torch.tensor(float(scale))):
            raise ValueError(f"DualConditionCFG scale must be a finite number, got {scale!r}")
        self.model = model
        self.scale = float(scale)
        # pointers upstream's sample/generate.py and p_sample_loop read from the sampled model
        for name in ("njoints", "nfeats", "data_rep", "cond_mode", "translation", "rot2xyz"):
            setattr(self, name, getattr(model, name))
        self.encode_text = model.encode_text

    def forward(self, x: Tensor, timesteps: Tensor, y: dict[str, Any] | None = None) -> Tensor:
        """Guided x0 prediction.

        Args:
            x: Tensor [B, F, 1, T], x_t (F = 263 for HumanML3D), normalised by Mean/Std.
            timesteps: LongTensor [B].
            y: upstream's condition dict: 'text' (B captions or class prompts) or 'text_embed'
                (Tensor [1, B, 512], which p_sample_loop fills), 'action' (LongTensor [B] or
                [B, 1]), 'mask' (BoolTensor [B, 1, 1, T]), optional 'scale' (Tensor [B]).

        Returns:
            Tensor [B, F, 1, T]: x0(null) + scale * (x0(cond) - x0(null)).
        """
        y = {} if y is None else y
        y_cond = {k: v for k, v in y.items() if k not in ("uncond", "drop_text", "drop_action")}
        y_uncond = dict(y_cond, uncond=True)
        out = self.model(x, timesteps, y_cond)
        out_uncond = self.model(x, timesteps, y_uncond)
        scale = y.get("scale")
        if scale is None:
            return out_uncond + self.scale * (out - out_uncond)
        return out_uncond + scale.view(-1, 1, 1, 1) * (out - out_uncond)
