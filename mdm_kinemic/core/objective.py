"""The KineMIC training objective (Sec. 4 of the paper): every loss term of one batch.

One step, for B (target, prior) pairs sharing a diffusion step t per pair:

1. x_t^T = q(x0^T, t), x_t^P = q(x0^P, t) with independent noise.
2. Teacher G^P (frozen, under torch.no_grad) on x_t^P with the prior's caption -> features F^P.
   Student G^T on x_t^T with the target's prompt and action (each dropped with its own
   probability) -> x0 prediction and features F^T.
3. L_rec^T, Eq. 3: masked MSE of the student's x0 prediction.
4. MIC module on F^T and F^P -> z^T, z^P, attention a^P; L_con, Eq. 1 (SNN). Its gradient
   reaches the student and the MIC module; the teacher's features carry none.
5. Eq. 2: the length-|x^T| window of largest summed a^P (a^P detached); x_t^{P*}, x0^{P*} and the
   teacher features are cut from x_t^P, x0^P, F^P at the same frames.
6. Student on x_t^{P*}, conditioned on the paired target's c^T (dropout redrawn):
   L_rec^{P*}, Eq. 4, and L_dist, Eq. 5, against the cut teacher features.
7. dww, Eq. 6 = (cos(z^T, z^{P*}) + 1) / 2 without gradient, z^{P*} the MIC context of the
   student's window features; it scales Eq. 4 and Eq. 5 per sample.

    L = lambda_rec L_rec^T + lambda_con L_con + lambda_window_rec mean(w L_rec^{P*})
        + lambda_dist mean(w L_dist),    w = dww if enabled else 1.

Switches reproduce the rows of the paper's Table 2 (see :data:`TABLE2_PRESETS`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Callable, NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn

from mdm_kinemic.core.contrastive import ContrastiveOutput, ContrastiveSettings, SoftNearestNeighbourLoss
from mdm_kinemic.core.denoiser import Condition, Denoiser, frame_mask_from_lengths
from mdm_kinemic.core.losses import (
    DISTILLATION_NORMALISATIONS,
    dynamic_window_weight,
    reconstruction_loss,
    window_distillation_loss,
)
from mdm_kinemic.core.mic import MICModule
from mdm_kinemic.core.sharding import BatchShard, shard_rows
from mdm_kinemic.core.window import PriorWindow, gather_window, mine_prior_windows

QSample = Callable[[Tensor, Tensor, Tensor], Tensor]
"""(x0 [B, F, 1, T], t [B], noise [B, F, 1, T]) -> x_t, e.g. upstream GaussianDiffusion.q_sample."""


@dataclass
class LossWeights:
    """The lambdas of the total loss (paper: all terms weighted 1 in Full)."""

    lambda_rec: float = field(default=1.0, metadata={"help": "lambda of L_rec^T, Eq. 3 (paper: 1)"})
    lambda_window_rec: float = field(default=1.0, metadata={"help": "lambda of L_rec^{P*}, Eq. 4 (paper: 1)"})
    lambda_con: float = field(default=1.0, metadata={"help": "lambda of L_con, Eq. 1 (paper: 1)"})
    lambda_dist: float = field(default=1.0, metadata={"help": ("lambda of L_dist, Eq. 5 (paper: 1; the authors' best"
                                                               " command: 0)")})

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"LossWeights.{f.name} must be a finite number >= 0, got {value!r}")


TABLE2_PRESETS: dict[str, dict[str, bool]] = {
    # name: the terms on top of L_rec^T (the paper's Table 2 rows)
    "mdm_lora": dict(contrastive=False, window_rec=False, distillation=False, dww=False),
    "base": dict(contrastive=True, window_rec=True, distillation=False, dww=False),
    "base_dist": dict(contrastive=True, window_rec=True, distillation=True, dww=False),
    "base_dww": dict(contrastive=True, window_rec=True, distillation=False, dww=True),
    "full": dict(contrastive=True, window_rec=True, distillation=True, dww=True),
}
"""Table 2 rows: MDM+LoRA (L_rec^T only), Base (+L_con +L_rec^{P*}), +L_dist, +dww, Full."""


@dataclass
class ObjectiveSettings:
    """Which terms the objective computes, their weights and the condition dropout.

    Defaults are the paper's Full row. Use :meth:`preset` for a Table 2 row.
    """

    weights: LossWeights = field(default_factory=LossWeights, metadata={"help": "the lambdas"})
    contrastive: bool = field(default=True, metadata={"help": ("L_con, Eq. 1 (SNN loss), which trains the MIC module"
                                                               " (Sec. 4.2); default: set by --preset")})
    window_rec: bool = field(default=True, metadata={"help": ("L_rec^{P*}, Eq. 4: reconstruction of the mined prior "
                                                              "window, labelled with the target's class; default: "
                                                              "set by --preset")})
    distillation: bool = field(default=True, metadata={"help": ("L_dist, Eq. 5: student features on the window vs "
                                                                "teacher features at the same frames; default: set "
                                                                "by --preset")})
    dww: bool = field(default=True, metadata={"help": ("dynamic window weighting, Eq. 6: scale Eq. 4 and 5 per pair "
                                                       "by (cos(z^T, z^{P*}) + 1) / 2; default: set by --preset")})
    text_dropout: float = field(default=0.1, metadata={"help": ("probability of dropping a student sample's text "
                                                                "condition (classifier-free guidance; paper silent, "
                                                                "the authors' 0.1)")})
    action_dropout: float = field(default=0.1, metadata={"help": ("probability of dropping a student sample's action"
                                                                  " condition (paper silent, the authors' 0.1)")})
    contrastive_settings: ContrastiveSettings = field(
        default_factory=ContrastiveSettings, metadata={"help": "temperature and prior bank of Eq. 1"}
    )
    distillation_normalisation: str = field(
        default="frame",
        metadata={"choices": DISTILLATION_NORMALISATIONS, "help": (
            "Eq. 5 normalisation: 'frame' = mean over window frames of the squared L2 (paper); 'element' = "
            "also divided by the feature width d (a per-element masked mean); 'authors_broadcast' = the "
            "authors' code, whose [B, 1, 1, T] mask broadcasts against [B, d, T] features, so each sample "
            "sums the whole batch's per-frame errors under its own mask (about B x 'element')")},
    )

    def __post_init__(self) -> None:
        for name in ("text_dropout", "action_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"ObjectiveSettings.{name} must be in [0, 1), got {value!r}")
        if self.distillation_normalisation not in DISTILLATION_NORMALISATIONS:
            raise ValueError(
                f"ObjectiveSettings.distillation_normalisation must be one of {DISTILLATION_NORMALISATIONS}, "
                f"got {self.distillation_normalisation!r}"
            )
        if self.dww and not self.uses_window:
            warnings.warn(
                "ObjectiveSettings.dww is ignored: it scales window_rec and distillation, both off", stacklevel=3
            )
        if self.uses_window and not self.contrastive:
            warnings.warn(
                "ObjectiveSettings: windows are mined from the MIC attention, which only L_con trains; "
                "with contrastive off they follow an untrained MIC module",
                stacklevel=3,
            )
        defaults = LossWeights()
        for term, weight in (
            ("contrastive", "lambda_con"),
            ("window_rec", "lambda_window_rec"),
            ("distillation", "lambda_dist"),
        ):
            if not getattr(self, term) and getattr(self.weights, weight) != getattr(defaults, weight):
                warnings.warn(f"LossWeights.{weight} is ignored: ObjectiveSettings.{term} is off", stacklevel=3)

    @property
    def uses_window(self) -> bool:
        """True when the prior window is mined and passed through the student (Eq. 4 or 5 on)."""
        return self.window_rec or self.distillation

    @property
    def uses_prior(self) -> bool:
        """True when the batch needs priors and the teacher is called."""
        return self.contrastive or self.uses_window

    @property
    def preset_name(self) -> str:
        """The Table 2 row these switches match, or "custom"."""
        switches = dict(
            contrastive=self.contrastive, window_rec=self.window_rec, distillation=self.distillation, dww=self.dww
        )
        return next((name for name, preset in TABLE2_PRESETS.items() if preset == switches), "custom")

    @classmethod
    def preset(cls, name: str, **overrides) -> "ObjectiveSettings":
        """Settings of a Table 2 row: "mdm_lora", "base", "base_dist", "base_dww" or "full".

        Raises:
            ValueError: unknown name (the message lists the accepted ones).
        """
        if name not in TABLE2_PRESETS:
            raise ValueError(f"unknown objective preset {name!r}; accepted: {', '.join(TABLE2_PRESETS)}")
        return cls(**{**TABLE2_PRESETS[name], **overrides})


@dataclass
class KineMICBatch:
    """B (target, prior) pairs: the few-shot targets and the soft positives drawn for them.

    Attributes:
        x0_target: Tensor [B, F, 1, T], clean target motions (normalised hml_vec, 20 fps).
        target_lengths: LongTensor [B], valid frames per target (the window length m).
        target_action: LongTensor [B], class index per target (the student's action condition).
        target_text: B class prompts, e.g. "a person performs a side kick." (student's text).
        x0_prior: Tensor [B, F, 1, T_P], the paired source motions (or their caption sub-spans);
            None when only L_rec^T is computed.
        prior_lengths: LongTensor [B], valid frames per prior.
        prior_text: B mined source captions, the teacher's text condition.
        prior_action: LongTensor [B], the priors' pseudo-classes for Eq. 1; None = target_action
            (a prior is drawn from its target's class top-k).
    """

    x0_target: Tensor
    target_lengths: Tensor
    target_action: Tensor
    target_text: Sequence[str]
    x0_prior: Optional[Tensor] = None
    prior_lengths: Optional[Tensor] = None
    prior_text: Optional[Sequence[str]] = None
    prior_action: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if self.x0_target.dim() != 4 or self.x0_target.shape[2] != 1:
            raise ValueError(f"KineMICBatch.x0_target must be [B, F, 1, T], got {tuple(self.x0_target.shape)}")
        batch, _, _, total = self.x0_target.shape
        _check_lengths("target_lengths", self.target_lengths, batch, total)
        if self.target_action.shape != (batch,):
            raise ValueError(f"KineMICBatch.target_action must be [{batch}], got {tuple(self.target_action.shape)}")
        if len(self.target_text) != batch:
            raise ValueError(f"KineMICBatch.target_text has {len(self.target_text)} prompts for {batch} targets")
        if self.x0_prior is None:
            if self.prior_lengths is not None or self.prior_text is not None:
                raise ValueError("KineMICBatch: prior_lengths/prior_text given without x0_prior")
            return
        if self.x0_prior.dim() != 4 or self.x0_prior.shape[:3] != self.x0_target.shape[:3]:
            raise ValueError(
                f"KineMICBatch.x0_prior must be [{batch}, {self.x0_target.shape[1]}, 1, T_P], "
                f"got {tuple(self.x0_prior.shape)}"
            )
        if self.prior_lengths is None or self.prior_text is None:
            raise ValueError("KineMICBatch: x0_prior needs prior_lengths and prior_text (the mined captions)")
        _check_lengths("prior_lengths", self.prior_lengths, batch, self.x0_prior.shape[-1])
        if len(self.prior_text) != batch:
            raise ValueError(f"KineMICBatch.prior_text has {len(self.prior_text)} captions for {batch} priors")
        if self.prior_action is not None and self.prior_action.shape != (batch,):
            raise ValueError(f"KineMICBatch.prior_action must be [{batch}], got {tuple(self.prior_action.shape)}")

    @property
    def has_prior(self) -> bool:
        return self.x0_prior is not None

    def rows(self, shard: BatchShard) -> "KineMICBatch":
        """The pairs ``shard.start:shard.stop`` (a rank's share under data parallelism).

        Raises:
            ValueError: the shard is of another batch size.
        """
        size = self.x0_target.shape[0]
        if shard.global_size != size:
            raise ValueError(f"a shard of a {shard.global_size}-pair batch cannot cut this {size}-pair batch")
        if shard.is_whole:
            return self
        cut = slice(shard.start, shard.stop)
        return KineMICBatch(
            x0_target=self.x0_target[cut], target_lengths=self.target_lengths[cut],
            target_action=self.target_action[cut], target_text=list(self.target_text)[cut],
            x0_prior=shard_rows(self.x0_prior, shard), prior_lengths=shard_rows(self.prior_lengths, shard),
            prior_text=None if self.prior_text is None else list(self.prior_text)[cut],
            prior_action=shard_rows(self.prior_action, shard),
        )


def _check_lengths(name: str, lengths: Tensor, batch: int, total: int) -> None:
    if lengths.shape != (batch,) or lengths.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
        raise ValueError(
            f"KineMICBatch.{name} must be an integer tensor [{batch}], got {lengths.dtype} {tuple(lengths.shape)}"
        )
    if bool((lengths < 1).any() | (lengths > total).any()):
        raise ValueError(f"KineMICBatch.{name} must lie in 1..{total} frames")


@dataclass
class ObjectiveOutput:
    """Every term of one step, for the optimiser and for logging.

    Attributes:
        loss: scalar total (see the module docstring).
        rec_target: Tensor [B], L_rec^T per sample (Eq. 3).
        contrastive: Eq. 1 result (loss, per-anchor terms, excluded count), or None when off.
        rec_window: Tensor [B], L_rec^{P*} per sample before dww (Eq. 4), or None.
        distillation: Tensor [B], L_dist per sample before dww (Eq. 5), or None.
        dww: Tensor [B], Eq. 6 values (computed for logging whenever a window is mined, applied
            only when enabled), or None.
        window: starts and lengths of the prior windows (frames), or None.
        timesteps: LongTensor [B], the diffusion step of each pair.
        drop_text, drop_action: BoolTensor [B], the target pass's condition dropout.
        window_drop_text, window_drop_action: BoolTensor [B], the window pass's redrawn dropout, or None.
        unconditional_share: share of student samples this step with both conditions dropped.
        prior_attention: Tensor [B, T_P], the prior stream's MIC attention a^P (detached) that
            chose the windows, or None when no prior was used.
    """

    loss: Tensor
    rec_target: Tensor
    contrastive: Optional[ContrastiveOutput]
    rec_window: Optional[Tensor]
    distillation: Optional[Tensor]
    dww: Optional[Tensor]
    window: Optional[PriorWindow]
    timesteps: Tensor
    drop_text: Tensor
    drop_action: Tensor
    window_drop_text: Optional[Tensor]
    window_drop_action: Optional[Tensor]
    unconditional_share: float
    prior_attention: Optional[Tensor] = None

    def scalars(self) -> dict[str, float]:
        """Python floats for a logger (tensorboard), keyed by term."""
        out = {
            "loss": float(self.loss.detach()),
            "rec_target": float(self.rec_target.detach().mean()),
            "unconditional_share": self.unconditional_share,
        }
        if self.contrastive is not None:
            out["contrastive"] = float(self.contrastive.loss.detach())
            out["contrastive_excluded"] = float(self.contrastive.excluded)
        if self.rec_window is not None:
            out["rec_window"] = float(self.rec_window.detach().mean())
        if self.distillation is not None:
            out["distillation"] = float(self.distillation.detach().mean())
        if self.dww is not None:
            out["dww_mean"] = float(self.dww.mean())
            out["dww_min"] = float(self.dww.min())
            out["dww_max"] = float(self.dww.max())
        if self.window is not None:
            out["window_start_mean"] = float(self.window.start.float().mean())
            out["window_length_mean"] = float(self.window.length.float().mean())
        return out


class _Denoisers(NamedTuple):
    # A plain container keeps the denoisers out of the objective's submodules: their
    # parameters, modes and checkpoints stay with their owners.
    student: Denoiser
    teacher: Denoiser


class KineMICObjective(nn.Module):
    """All KineMIC loss terms of a batch (Sec. 4), over any two :class:`Denoiser` implementations.

    Submodules (``parameters()``, ``state_dict()``): the MIC module and the contrastive loss
    (its learnable temperature and prior bank, when enabled). The student's trainable
    parameters (LoRA, action embedding) are not included: give them to the optimiser alongside.
    The teacher is only ever called under ``torch.no_grad()``; putting it in eval mode (our
    default) or train mode is the caller's choice.

    Args:
        student: G^T, the dual-conditioned (text + action) denoiser being fine-tuned.
        teacher: G^P, the frozen text-conditioned denoiser.
        mic: the MIC module, width ``student.latent_dim``.
        q_sample: the forward diffusion (x0, t, noise) -> x_t, e.g. upstream's
            ``GaussianDiffusion.q_sample``.
        settings: terms, weights, dropout; default :class:`ObjectiveSettings()` (Full).

    Raises:
        ValueError: denoiser and MIC widths that disagree.
    """

    def __init__(
        self,
        student: Denoiser,
        teacher: Denoiser,
        mic: MICModule,
        q_sample: QSample,
        settings: Optional[ObjectiveSettings] = None,
    ) -> None:
        super().__init__()
        self.settings = settings = settings or ObjectiveSettings()
        if not (student.latent_dim == teacher.latent_dim == mic.latent_dim):
            raise ValueError(
                f"latent widths disagree: student {student.latent_dim}, teacher {teacher.latent_dim}, "
                f"MIC module {mic.latent_dim}; build MICModule(latent_dim={student.latent_dim})"
            )
        self.denoisers = _Denoisers(student, teacher)
        self.q_sample = q_sample
        self.mic = mic
        self.contrastive = SoftNearestNeighbourLoss(settings.contrastive_settings, embedding_dim=mic.output_dim)

    def draw_condition_dropout(self, batch: int, device: torch.device,
                               shard: Optional[BatchShard] = None) -> tuple[Tensor, Tensor]:
        """Independent per-sample drops of the text and of the action condition: BoolTensors [b].

        Only in training mode; in eval mode (validation losses) nothing is dropped, as upstream
        MDM's mask_cond. With a ``shard`` of a larger batch, drawn for the whole batch and sliced
        (each pair gets its one-process draw).
        """
        shard = shard or BatchShard.whole(batch)
        if not self.training:
            keep = torch.zeros(batch, dtype=torch.bool, device=device)
            return keep, keep.clone()
        drop_text = shard.draw(lambda n: torch.rand(n, device=device)) < self.settings.text_dropout
        drop_action = shard.draw(lambda n: torch.rand(n, device=device)) < self.settings.action_dropout
        return drop_text, drop_action

    def forward(
        self,
        batch: KineMICBatch,
        timesteps: Tensor,
        noise_target: Optional[Tensor] = None,
        noise_prior: Optional[Tensor] = None,
        shard: Optional[BatchShard] = None,
    ) -> ObjectiveOutput:
        """Compute every enabled term for ``batch``.

        Args:
            batch: B (target, prior) pairs; priors may be omitted for the mdm_lora preset. Under
                data parallelism: this rank's b pairs, ``batch.rows(shard)``.
            timesteps: LongTensor [B], one diffusion step per pair (drawn by the caller's
                schedule sampler), used for both the target and its prior.
            noise_target, noise_prior: the Gaussian noise of q_sample, drawn here when None.
            shard: which rows of a larger batch ``batch`` is (core/sharding.py): the loss is then
                this rank's part, whose average over ranks is the whole batch's loss, and Eq. 1's
                candidates are every rank's priors. Default: the whole batch.

        Returns:
            :class:`ObjectiveOutput`; its per-sample terms are this shard's.

        Raises:
            ValueError: priors missing while a term needs them, timesteps not [B], or a shard of
                another size.
        """
        settings, weights = self.settings, self.settings.weights
        student, teacher = self.denoisers
        x0_target = batch.x0_target
        size, _, _, total = x0_target.shape
        device = x0_target.device
        if timesteps.shape != (size,):
            raise ValueError(f"timesteps must be [{size}], one per pair, got {tuple(timesteps.shape)}")
        shard = shard or BatchShard.whole(size)
        if shard.size != size:
            raise ValueError(f"the shard holds {shard.size} pairs, the batch {size}")
        if not shard.is_whole and settings.distillation and settings.distillation_normalisation == "authors_broadcast":
            # that form sums every sample's feature differences over the batch: a shard sees only its own
            raise ValueError("--distillation_normalisation authors_broadcast couples the whole batch and is not "
                             "computed on a shard: run it in one process, or use frame or element under torchrun")
        if settings.uses_prior and not batch.has_prior:
            raise ValueError(
                f"the {settings.preset_name!r} objective needs priors: give KineMICBatch x0_prior, "
                "prior_lengths and prior_text, or use ObjectiveSettings.preset('mdm_lora')"
            )
        target_mask = frame_mask_from_lengths(batch.target_lengths.to(device), total)
        if noise_target is None:
            noise_target = shard.draw(lambda n: torch.randn(n, *x0_target.shape[1:], dtype=x0_target.dtype, device=device))

        drop_text, drop_action = self.draw_condition_dropout(size, device, shard)
        target_cond = Condition(
            text=list(batch.target_text), action=batch.target_action, drop_text=drop_text, drop_action=drop_action
        )
        x_t_target = self.q_sample(x0_target, timesteps, noise_target)
        target_out = student.denoise(x_t_target, timesteps, target_cond, target_mask)
        rec_target = reconstruction_loss(target_out.x0, x0_target, target_mask)
        loss = weights.lambda_rec * shard.mean(rec_target)

        contrastive = rec_window = distillation = dww = window = prior_attention = None
        window_drop_text = window_drop_action = None
        unconditional = [drop_text & drop_action]
        if settings.uses_prior:
            x0_prior = batch.x0_prior
            prior_mask = frame_mask_from_lengths(batch.prior_lengths.to(device), x0_prior.shape[-1])
            if noise_prior is None:
                noise_prior = shard.draw(lambda n: torch.randn(n, *x0_prior.shape[1:], dtype=x0_prior.dtype, device=device))
            x_t_prior = self.q_sample(x0_prior, timesteps, noise_prior)
            with torch.no_grad():
                teacher_out = teacher.denoise(x_t_prior, timesteps, Condition(text=list(batch.prior_text)), prior_mask)
            prior_features = teacher_out.features.detach()

            with torch.set_grad_enabled(settings.contrastive and torch.is_grad_enabled()):
                prior_mic = self.mic(prior_features, prior_mask)
                target_mic = self.mic(target_out.features, target_mask)
            prior_attention = prior_mic.attention.detach()
            if settings.contrastive:
                prior_action = batch.prior_action if batch.prior_action is not None else batch.target_action
                contrastive = self.contrastive(target_mic.z, batch.target_action, prior_mic.z, prior_action, shard=shard)
                loss = loss + weights.lambda_con * contrastive.loss

            if settings.uses_window:
                window = mine_prior_windows(prior_attention, batch.prior_lengths, batch.target_lengths)
                window_mask = window.frame_mask(total)
                x_t_window = gather_window(x_t_prior, window, total)
                x0_window = gather_window(x0_prior, window, total)
                teacher_window_features = gather_window(prior_features, window, total, time_dim=1)
                window_drop_text, window_drop_action = self.draw_condition_dropout(size, device, shard)
                unconditional.append(window_drop_text & window_drop_action)
                window_cond = Condition(
                    text=list(batch.target_text),
                    action=batch.target_action,
                    drop_text=window_drop_text,
                    drop_action=window_drop_action,
                )
                window_out = student.denoise(x_t_window, timesteps, window_cond, window_mask)
                with torch.no_grad():
                    z_window = self.mic(window_out.features.detach(), window_mask).z
                    dww = dynamic_window_weight(target_mic.z.detach(), z_window)
                scale = dww if settings.dww else torch.ones_like(dww)
                if settings.window_rec:
                    rec_window = reconstruction_loss(window_out.x0, x0_window, window_mask)
                    loss = loss + weights.lambda_window_rec * shard.mean(scale * rec_window)
                if settings.distillation:
                    distillation = window_distillation_loss(
                        window_out.features, teacher_window_features, window_mask, settings.distillation_normalisation
                    )
                    loss = loss + weights.lambda_dist * shard.mean(scale * distillation)

        return ObjectiveOutput(
            loss=loss,
            rec_target=rec_target,
            contrastive=contrastive,
            rec_window=rec_window,
            distillation=distillation,
            dww=dww,
            window=window,
            timesteps=timesteps,
            drop_text=drop_text,
            drop_action=drop_action,
            window_drop_text=window_drop_text,
            window_drop_action=window_drop_action,
            unconditional_share=float(torch.cat(unconditional).float().mean()),
            prior_attention=prior_attention,
        )
