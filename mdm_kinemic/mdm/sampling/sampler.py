"""Sampling core of mdm_kinemic.synth: guided reverse diffusion of many KineMIC motions at once.

What differs from upstream's sample/generate.py (which drives ``p_sample_loop`` through
``ClassifierFreeSampleModel``):

* the conditional and the unconditional pass of classifier-free guidance run as ONE batch of
  2B (``BatchedGuidance``): conditions kept for the first half, text and action both dropped
  for the second (KineMICMDM's per-sample ``drop_text`` / ``drop_action``), then
  x0 = x0(null) + s * (x0(text, action) - x0(null)) (Ho & Salimans 2022; the paper's s = 2.5);
* every motion has its own seed: its initial noise x_T and the noise of every ancestral step come
  from its own generator, so a motion depends on its seed, condition and length only, not on the
  batch it was drawn in (what makes mdm_kinemic.synth resumable motion by motion);
* a batch holds motions of ONE length, never padded: upstream's HumanML3D checkpoints are trained
  without --mask_frames, so padded frames would change the valid ones;
* the checkpoint's 1000 steps can be respaced with upstream's ``space_timesteps`` ("ddim50",
  "100", ...) and sampled ancestrally (upstream's p_sample) or with DDIM (eta 0).

The diffusion arithmetic is upstream's own (``GaussianDiffusion.p_mean_variance`` /
``ddim_sample`` of diffusion/gaussian_diffusion.py, on a ``SpacedDiffusion`` of
diffusion/respace.py).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "SAMPLERS",
    "BatchedGuidance",
    "GuidedSampler",
    "SamplerSettings",
    "auto_batch_size",
    "plan_batches",
    "respaced_diffusion",
]

SAMPLERS = ("ddpm", "ddim")
_RESPACING = re.compile(r"^(ddim\d+|\d+(,\d+)*)$")
CPU_BATCH_SIZE = 256  # CPU: memory is never the limit at MDM's size; throughput flattens earlier


@dataclass(frozen=True)
class SamplerSettings:
    """How motions are drawn from a KineMIC student.

    Raises:
        ValueError: a field out of range, naming the field and the accepted values.
    """

    guidance_param: float = field(default=2.5, metadata={
        "help": "classifier-free guidance scale s over the dual text + action condition (paper: 2.5; "
                "1 = conditional prediction only, one pass)"})
    timestep_respacing: str = field(default="", metadata={
        "help": "respace the checkpoint's diffusion steps with upstream's space_timesteps: '' keeps "
                "them (MDM: 1000), 'ddim50' / 'ddim100' DDIM striding, '50' or '25,25' even sections"})
    sampler: str = field(default="ddpm", metadata={
        "help": "reverse process: 'ddpm' ancestral sampling (upstream's p_sample), 'ddim' "
                "deterministic DDIM (eta 0, upstream's ddim_sample) after the first noise",
        "choices": SAMPLERS})
    batch_size: int = field(default=0, metadata={
        "help": "motions per network batch (each runs as 2 x batch rows with guidance); 0 = as many as "
                "memory allows (CUDA: measured; CPU: 256)"})

    def __post_init__(self) -> None:
        if not math.isfinite(float(self.guidance_param)) or self.guidance_param < 0:
            raise ValueError(f"guidance_param must be a finite number >= 0, got {self.guidance_param!r}")
        if self.timestep_respacing and not _RESPACING.match(self.timestep_respacing):
            raise ValueError(
                f"timestep_respacing={self.timestep_respacing!r}: accepted values are '', 'ddimN' (e.g. "
                "ddim50) or comma-separated step counts (e.g. '100' or '25,25')"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler={self.sampler!r}: accepted values are {SAMPLERS}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ValueError(f"batch_size must be an integer >= 0 (0 = automatic), got {self.batch_size!r}")


def respaced_diffusion(args: argparse.Namespace, timestep_respacing: str = "") -> Any:
    """Upstream's diffusion for a checkpoint's args, optionally with fewer steps.

    Upstream's ``create_gaussian_diffusion`` (utils/model_util.py) fixes ``timestep_respacing``
    to the full schedule; this builds the same ``SpacedDiffusion`` with the given respacing.

    Args:
        args: the checkpoint's upstream flags (noise_schedule, diffusion_steps, sigma_small,
            lambda_*).
        timestep_respacing: '' (all ``args.diffusion_steps`` steps), 'ddimN', or section counts
            ('100', '25,25'), as upstream's ``space_timesteps``.

    Returns:
        diffusion.respace.SpacedDiffusion with ``num_timesteps`` = the kept steps.

    Raises:
        ValueError: the respacing cannot divide the checkpoint's steps (upstream's message).
    """
    from diffusion import gaussian_diffusion as gd
    from diffusion.respace import SpacedDiffusion, space_timesteps
    from utils.model_util import create_gaussian_diffusion

    base = create_gaussian_diffusion(args)
    if not timestep_respacing:
        return base
    steps = int(args.diffusion_steps)
    return SpacedDiffusion(
        use_timesteps=space_timesteps(steps, timestep_respacing),
        betas=gd.get_named_beta_schedule(args.noise_schedule, steps, 1.0),
        model_mean_type=base.model_mean_type,
        model_var_type=base.model_var_type,
        loss_type=base.loss_type,
        rescale_timesteps=base.rescale_timesteps,
        lambda_vel=base.lambda_vel,
        lambda_rcxyz=base.lambda_rcxyz,
        lambda_fc=base.lambda_fc,
        lambda_target_loc=base.lambda_target_loc,
    )


class BatchedGuidance(nn.Module):
    """Classifier-free guidance over text + action with both passes in one batch.

    Args:
        model: a KineMICSamplingModel (mdm/sampling/student.py), or anything whose ``forward(x, t, y)``
            honours per-sample ``y['drop_text']`` and ``y['drop_action']`` (BoolTensor [B]) as
            KineMICMDM does.
        scale: guidance scale s, used where y has no 'scale'; 1 runs the conditional pass only.

    Attributes copied from the model for upstream's sampling code (sample/generate.py,
    p_sample_loop): njoints, nfeats, data_rep, cond_mode, translation, rot2xyz, encode_text.
    """

    _CONDITIONS = ("text_embed", "text", "action")

    def __init__(self, model: nn.Module, scale: float = 2.5) -> None:
        super().__init__()
        self.model = model
        self.scale = float(scale)
        for name in ("njoints", "nfeats", "data_rep", "cond_mode", "translation", "rot2xyz", "encode_text"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def forward(self, x: Tensor, timesteps: Tensor, y: dict[str, Any] | None = None) -> Tensor:
        """Guided x0 prediction.

        Args:
            x: Tensor [B, F, 1, T], x_t, normalised by Mean/Std.
            timesteps: LongTensor [B] (already mapped to the checkpoint's steps by upstream's
                respacing wrapper).
            y: 'action' (LongTensor [B] or [B, 1]); optional 'text_embed' (Tensor [1, B, 512])
                or 'text' (B strings); optional 'scale' (Tensor [B], upstream generate.py's
                per-sample guidance scale). Other keys are not passed on: the model sees no
                mask, as in upstream's generate.py, whose batches are never padded.

        Returns:
            Tensor [B, F, 1, T]: x0(null) + s * (x0(text, action) - x0(null)).
        """
        y = {} if y is None else y
        cond = {k: y[k] for k in self._CONDITIONS if y.get(k) is not None}
        scale = y.get("scale")
        if scale is None and self.scale == 1.0:
            return self.model(x, timesteps, cond)
        bs = x.shape[0]
        keep = torch.zeros(bs, dtype=torch.bool, device=x.device)
        drop = torch.cat([keep, ~keep])
        doubled: dict[str, Any] = {"drop_text": drop, "drop_action": drop}
        for key, value in cond.items():
            if key == "text_embed":
                doubled[key] = torch.cat([value, value], dim=1)
            elif key == "text":
                doubled[key] = list(value) + list(value)
            else:
                doubled[key] = torch.cat([value, value])
        out = self.model(torch.cat([x, x]), torch.cat([timesteps, timesteps]), doubled)
        cond_out, uncond_out = out[:bs], out[bs:]
        s = self.scale if scale is None else scale.view(-1, 1, 1, 1).to(out.dtype)
        return uncond_out + s * (cond_out - uncond_out)


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group motions into batches of one length each.

    Args:
        lengths: frames of each motion (20 fps).
        batch_size: most motions per batch, >= 1.

    Returns:
        Lists of indices into ``lengths``; each list shares one length, holds at most
        ``batch_size`` indices, ascending; batches ordered by length then index.

    Raises:
        ValueError: batch_size < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        by_length.setdefault(int(length), []).append(index)
    batches = []
    for length in sorted(by_length):
        indices = by_length[length]
        batches += [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    return batches


def auto_batch_size(
    forward: Callable[[int], None], max_motions: int, device: torch.device, *, probe: int = 4, budget: float = 0.7
) -> int:
    """The largest batch (in motions) that fits in memory, capped at ``max_motions``.

    On CUDA, runs ``forward(probe)`` once, reads the peak memory it added, and scales to
    ``budget`` of the free memory (activations grow linearly with the batch). On CPU returns
    min(max_motions, 256): RAM is not the limit at MDM's size, and CPU throughput stops
    improving at a few hundred rows.

    Args:
        forward: runs one guided network pass for a batch of n motions at the longest length.
        max_motions: motions left to draw (>= 1).
        device: where sampling runs.
        probe: motions in the probe batch.
        budget: share of free memory to use.

    Returns:
        Batch size in motions, >= 1.
    """
    max_motions = max(1, int(max_motions))
    if device.type != "cuda":
        return min(max_motions, CPU_BATCH_SIZE)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    forward(probe)
    torch.cuda.synchronize(device)
    per_motion = max(1, (torch.cuda.max_memory_allocated(device) - before) // probe)
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(max_motions, int(budget * free // per_motion)))


class GuidedSampler:
    """Draws batches of KineMIC motions: one length per batch, one seed per motion.

    Args:
        guided: a ``BatchedGuidance`` (or any x0 model ``model(x, t, y)``).
        diffusion: upstream SpacedDiffusion (``respaced_diffusion``).
        sampler: 'ddpm' or 'ddim'.
        device: where x_t lives (the model's device).
    """

    def __init__(self, guided: nn.Module, diffusion: Any, sampler: str, device: torch.device) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler={sampler!r}: accepted values are {SAMPLERS}")
        self.guided = guided
        self.diffusion = diffusion
        self.sampler = sampler
        self.device = torch.device(device)
        self.shape = (int(guided.njoints), int(guided.nfeats))  # (263, 1) for HumanML3D

    @property
    def num_steps(self) -> int:
        """Reverse steps per motion (after respacing)."""
        return int(self.diffusion.num_timesteps)

    def _noise(self, generators: Sequence[torch.Generator], length: int) -> Tensor:
        shape = (*self.shape, length)
        return torch.stack([torch.randn(shape, generator=g, device=self.device) for g in generators])

    @torch.no_grad()
    def sample(
        self,
        text_embed: Tensor,
        action: Tensor,
        length: int,
        seeds: Sequence[int],
        on_step: Callable[[], None] | None = None,
    ) -> Tensor:
        """Draw one batch of motions of one length.

        Args:
            text_embed: Tensor [B, 512], CLIP features of each motion's text condition c^T.
            action: LongTensor [B], action class of each motion.
            length: frames per motion (20 fps), 1..196 for HumanML3D checkpoints.
            seeds: B integer seeds; motion b's x_T and step noise come from its own generator.
            on_step: called after every reverse step (progress bars).

        Returns:
            Tensor [B, F, 1, length] on the sampler's device: x0, normalised (multiply by Std
            and add Mean for 263-dim HumanML3D features).

        Raises:
            ValueError: B differs between text_embed, action and seeds, or length < 1.
        """
        bs = len(seeds)
        if text_embed.shape[0] != bs or action.shape[0] != bs:
            raise ValueError(f"GuidedSampler.sample: {text_embed.shape[0]} texts, {action.shape[0]} actions, {bs} seeds")
        if length < 1:
            raise ValueError(f"GuidedSampler.sample: length must be >= 1, got {length}")
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        y = {"text_embed": text_embed.to(self.device)[None], "action": action.to(self.device).long()}
        model_kwargs = {"y": y}
        x = self._noise(generators, length)
        for i in reversed(range(self.num_steps)):
            t = torch.full((bs,), i, dtype=torch.long, device=self.device)
            if self.sampler == "ddim":
                x = self.diffusion.ddim_sample(self.guided, x, t, clip_denoised=False, model_kwargs=model_kwargs, eta=0.0)[
                    "sample"
                ]
            else:
                out = self.diffusion.p_mean_variance(self.guided, x, t, clip_denoised=False, model_kwargs=model_kwargs)
                x = out["mean"]
                if i > 0:  # upstream p_sample: no noise at t == 0
                    x = x + torch.exp(0.5 * out["log_variance"]) * self._noise(generators, length)
            if on_step is not None:
                on_step()
        return x
