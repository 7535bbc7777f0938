"""Eq. 1 of the paper: the Soft Nearest Neighbour (SNN) contrastive loss that trains the MIC module.

Anchors are the target embeddings z^T of the batch; candidates are the prior embeddings z^P
(plus, optionally, a FIFO bank of detached prior embeddings from earlier steps). A candidate is a
positive of an anchor when it carries the same (pseudo-)class: a prior's pseudo-class is the class
whose top-k it was mined from, i.e. the class of the target it is paired with.

    L_con = -1/|A| sum_{i in A} log( sum_{j: y_j = y_i} exp(s_ij / tau) / sum_k exp(s_ik / tau) )

with s_ij the cosine similarity of z^T_i and z^P_j, and A the anchors having at least one
positive; the others are excluded and counted, never turned into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdm_kinemic.core.sharding import BatchShard


@dataclass
class ContrastiveSettings:
    """Temperature and candidate set of Eq. 1."""

    temperature: float = field(
        default=0.07, metadata={"help": "temperature tau of Eq. 1 (paper: 0.07)"}
    )
    learnable_temperature: bool = field(
        default=False,
        metadata={"help": ("learn 1/tau as a logit scale initialised at 1/tau, clamped (the authors' code); default "
                           "fixed (paper)")},
    )
    max_logit_scale: float = field(
        default=100.0, metadata={"help": "upper clamp of the learnable 1/tau (the authors' 100)"}
    )
    bank_size: int = field(
        default=0,
        metadata={
            "help": ("FIFO bank of detached prior embeddings from earlier steps as extra Eq. 1 candidates (the "
                     "authors' 60; paper: the batch only, 0)")
        },
    )

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"ContrastiveSettings.temperature must be a finite number > 0, got {self.temperature!r}")
        if not (math.isfinite(self.max_logit_scale) and self.max_logit_scale >= 1):
            raise ValueError(
                f"ContrastiveSettings.max_logit_scale must be finite and >= 1, got {self.max_logit_scale!r}"
            )
        if self.learnable_temperature and 1.0 / self.temperature > self.max_logit_scale:
            raise ValueError(
                f"ContrastiveSettings: 1/temperature = {1 / self.temperature:g} exceeds max_logit_scale = "
                f"{self.max_logit_scale:g}; raise max_logit_scale or the temperature"
            )
        if not isinstance(self.bank_size, int) or self.bank_size < 0:
            raise ValueError(f"ContrastiveSettings.bank_size must be an integer >= 0, got {self.bank_size!r}")


class ContrastiveOutput(NamedTuple):
    """What :class:`SoftNearestNeighbourLoss` returns.

    Attributes:
        loss: scalar, the mean of ``per_anchor`` over anchors with a positive (0 when none has one,
            still attached to the graph so that backward() works).
        per_anchor: Tensor [B], each anchor's term; 0 where excluded.
        has_positive: BoolTensor [B], False for anchors excluded for lack of a positive.
        excluded: the number of excluded anchors.
        candidates: the number of candidates (batch plus bank).
    """

    loss: Tensor
    per_anchor: Tensor
    has_positive: Tensor
    excluded: int
    candidates: int


class SoftNearestNeighbourLoss(nn.Module):
    """Eq. 1 with a fixed or learnable temperature and an optional FIFO bank of prior embeddings.

    The bank lives in buffers (saved with the state dict) and is filled only in training mode,
    after the loss is computed, so a step's own priors never appear twice among its candidates.

    Args:
        settings: temperature and bank size.
        embedding_dim: width of z; required when ``settings.bank_size > 0``.

    Raises:
        ValueError: a bank without ``embedding_dim``.
    """

    def __init__(self, settings: Optional[ContrastiveSettings] = None, embedding_dim: Optional[int] = None) -> None:
        super().__init__()
        self.settings = settings = settings or ContrastiveSettings()
        log_scale = torch.tensor(math.log(1.0 / settings.temperature))
        if settings.learnable_temperature:
            self.log_logit_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_logit_scale", log_scale)
        if settings.bank_size > 0:
            if embedding_dim is None:
                raise ValueError("SoftNearestNeighbourLoss: embedding_dim is required when bank_size > 0")
            self.register_buffer("bank_z", torch.zeros(settings.bank_size, embedding_dim))
            self.register_buffer("bank_labels", torch.zeros(settings.bank_size, dtype=torch.long))
            self.register_buffer("bank_filled", torch.zeros((), dtype=torch.long))
            self.register_buffer("bank_next", torch.zeros((), dtype=torch.long))

    @property
    def logit_scale(self) -> Tensor:
        """1/tau, clamped to [1, max_logit_scale] (a scalar tensor, differentiable when learnable)."""
        return self.log_logit_scale.clamp(0.0, math.log(self.settings.max_logit_scale)).exp()

    def bank(self) -> tuple[Tensor, Tensor]:
        """The bank's embeddings [S', D] and labels [S'] (S' <= bank_size filled slots)."""
        if self.settings.bank_size == 0:
            return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
        filled = int(self.bank_filled)
        return self.bank_z[:filled], self.bank_labels[:filled]

    @torch.no_grad()
    def push(self, z: Tensor, labels: Tensor) -> None:
        """Append detached embeddings [N, D] and labels [N] to the bank, dropping the oldest."""
        size = self.settings.bank_size
        if size == 0:
            return
        z, labels = z.detach()[-size:], labels.detach()[-size:]
        slots = (self.bank_next + torch.arange(z.shape[0], device=self.bank_z.device)) % size
        self.bank_z[slots] = z.to(self.bank_z.dtype)
        self.bank_labels[slots] = labels.to(self.bank_labels.device)
        self.bank_next.copy_((self.bank_next + z.shape[0]) % size)
        self.bank_filled.clamp_(max=size - z.shape[0]).add_(z.shape[0])

    def forward(
        self,
        z_target: Tensor,
        target_labels: Tensor,
        z_prior: Tensor,
        prior_labels: Tensor,
        update_bank: Optional[bool] = None,
        shard: Optional[BatchShard] = None,
    ) -> ContrastiveOutput:
        """Eq. 1 over anchors ``z_target`` and candidates ``z_prior`` (+ bank).

        Args:
            z_target: Tensor [B, D], MIC context vectors of the target stream (anchors).
            target_labels: LongTensor [B], the targets' classes.
            z_prior: Tensor [M, D], MIC context vectors of the prior stream (candidates).
            prior_labels: LongTensor [M], the priors' pseudo-classes.
            update_bank: push ``z_prior`` into the bank after the loss; default: in training mode.
            shard: the anchors and candidates are one rank's rows of a larger batch
                (core/sharding.py): the candidates become every rank's priors (gathered with their
                gradient), the bank takes them all, and the loss is this rank's part of the mean
                over every rank's anchors with a positive. Default: the whole batch.

        Returns:
            :class:`ContrastiveOutput` (per-anchor terms and counts of this shard's anchors).

        Raises:
            ValueError: mismatched widths or label counts.
        """
        if z_target.dim() != 2 or z_prior.dim() != 2 or z_target.shape[1] != z_prior.shape[1]:
            raise ValueError(
                "z_target [B, D] and z_prior [M, D] must share D, "
                f"got {tuple(z_target.shape)} and {tuple(z_prior.shape)}"
            )
        if target_labels.shape != z_target.shape[:1] or prior_labels.shape != z_prior.shape[:1]:
            raise ValueError("target_labels must be [B] and prior_labels [M], matching the embeddings")
        if shard is not None and not shard.is_whole:
            z_prior, prior_labels = shard.gather(z_prior), shard.gather(prior_labels)
        candidates, candidate_labels = z_prior, prior_labels
        bank_z, bank_labels = self.bank()
        if bank_z.shape[0]:
            candidates = torch.cat([candidates, bank_z.to(candidates.dtype)])
            candidate_labels = torch.cat([candidate_labels, bank_labels])

        logits = self.logit_scale * F.normalize(z_target, dim=-1) @ F.normalize(candidates, dim=-1).T
        positive = target_labels[:, None] == candidate_labels[None, :]
        has_positive = positive.any(dim=1)
        # Rows without a positive get their own logits as stand-in "positives": finite values (not
        # -inf) keep logsumexp's gradient NaN-free; those rows are zeroed out below.
        positive = positive | ~has_positive[:, None]
        log_positive = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
        per_anchor = torch.where(
            has_positive, torch.logsumexp(logits, dim=1) - log_positive, torch.zeros_like(log_positive)
        )
        kept = int(has_positive.sum())
        if shard is None or shard.is_whole:
            loss = per_anchor.sum() / max(kept, 1)
        else:
            kept_everywhere = int(shard.sum_over_ranks(has_positive.sum().reshape(1)))
            loss = per_anchor.sum() * (shard.world_size / max(kept_everywhere, 1))

        if update_bank if update_bank is not None else self.training:
            self.push(z_prior, prior_labels)
        return ContrastiveOutput(
            loss=loss,
            per_anchor=per_anchor,
            has_positive=has_positive,
            excluded=int(has_positive.numel() - kept),
            candidates=int(candidates.shape[0]),
        )
