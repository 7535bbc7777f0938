"""Eq. 2 of the paper: mining the prior window, and cutting it out of the prior's tensors.

For each (target, prior) pair, the prior window x^{P*} is the contiguous run of m = |x^T| frames
of the prior with the largest summed MIC attention a^P:

    s* = argmax_s sum_{t=s}^{s+m-1} a^P_t,   0 <= s <= |x^P| - m.

All window sums come from one cumulative sum per row (no loop over frames). The window is cut
from the same noisy x_t^P the teacher saw, so its frames line up with the teacher's features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mdm_kinemic.core.denoiser import frame_mask_from_lengths

# Window sums are compared in float64, where sums of up to 196 float32 attentions are exact or
# within ~1e-14; anything closer than this counts as a tie and goes to the earliest start.
_TIE_TOLERANCE = 1e-12


class PriorWindow(NamedTuple):
    """Where the prior window lies in each prior.

    Attributes:
        start: LongTensor [B], first frame of the window in the prior (20 fps frames).
        length: LongTensor [B], window length: min(m, prior length).
    """

    start: Tensor
    length: Tensor

    def frame_mask(self, max_len: int) -> Tensor:
        """BoolTensor [B, max_len], True on the first ``length`` frames of a cut-out window."""
        return frame_mask_from_lengths(self.length, max_len)


def mine_prior_windows(attention: Tensor, prior_lengths: Tensor, window_lengths: Tensor) -> PriorWindow:
    """Eq. 2: start of the length-m window of largest summed attention, per row.

    Args:
        attention: Tensor [B, T], the prior stream's MIC attention a^P (any non-negative score
            works); frames at or beyond ``prior_lengths`` are ignored.
        prior_lengths: LongTensor [B], valid frames of each prior (1 <= length <= T).
        window_lengths: LongTensor [B], m, the paired target's length (>= 1).

    Returns:
        :class:`PriorWindow`. A prior shorter than m yields the whole prior (start 0, its own
        length); equal sums (within 1e-12) take the earliest start.

    Raises:
        ValueError: shapes that disagree or lengths out of range.
    """
    if attention.dim() != 2:
        raise ValueError(f"attention must be [B, T], got {tuple(attention.shape)}")
    batch, total = attention.shape
    if prior_lengths.shape != (batch,) or window_lengths.shape != (batch,):
        raise ValueError(
            f"prior_lengths and window_lengths must be [{batch}], "
            f"got {tuple(prior_lengths.shape)} and {tuple(window_lengths.shape)}"
        )
    if bool((prior_lengths < 1).any() | (prior_lengths > total).any()):
        raise ValueError(f"prior_lengths must lie in 1..{total} (the attention's T)")
    if bool((window_lengths < 1).any()):
        raise ValueError("window_lengths must be >= 1")
    prior_lengths = prior_lengths.to(attention.device)
    length = torch.minimum(window_lengths.to(attention.device), prior_lengths)

    frames = torch.arange(total, device=attention.device)
    valid = frames[None, :] < prior_lengths[:, None]
    scores = torch.where(valid, attention.double(), 0.0)
    cumulative = torch.nn.functional.pad(scores.cumsum(dim=1), (1, 0))
    ends = (frames[None, :] + length[:, None]).clamp(max=total)
    window_sums = cumulative.gather(1, ends) - cumulative[:, :total]
    feasible = frames[None, :] + length[:, None] <= prior_lengths[:, None]
    window_sums = window_sums.masked_fill(~feasible, float("-inf"))
    best = window_sums.max(dim=1, keepdim=True).values
    # argmax over a bool row returns its first True: the earliest of the (near-)tied starts.
    start = (window_sums >= best - _TIE_TOLERANCE).to(torch.uint8).argmax(dim=1)
    return PriorWindow(start=start, length=length)


def gather_window(x: Tensor, window: PriorWindow, max_len: int, time_dim: int = -1) -> Tensor:
    """Cut each row's window out of ``x`` and left-align it, zero-padded to ``max_len`` frames.

    Args:
        x: Tensor with batch first and frames on ``time_dim``: x_t^P or x0^P [B, F, 1, T]
            (time_dim=-1), or the teacher's features [B, T, d] (time_dim=1).
        window: starts and lengths from :func:`mine_prior_windows`.
        max_len: frames of the output (usually the target batch's T); must be >= every length.
        time_dim: the frame axis of ``x``.

    Returns:
        Tensor shaped like ``x`` with ``max_len`` frames on ``time_dim``: frame i of row b is
        x[b, ..., start_b + i] for i < length_b, and 0 after it (see :meth:`PriorWindow.frame_mask`).

    Raises:
        ValueError: a window that ends beyond ``x`` or is longer than ``max_len``.
    """
    time_dim = time_dim % x.dim()
    if time_dim == 0:
        raise ValueError("time_dim cannot be the batch axis")
    total = x.shape[time_dim]
    start, length = window.start.to(x.device), window.length.to(x.device)
    if bool((start + length > total).any()):
        raise ValueError(f"a window ends beyond the {total} frames of x")
    if bool((length > max_len).any()):
        raise ValueError(f"a window is longer than max_len={max_len}")
    offsets = torch.arange(max_len, device=x.device)
    inside = offsets[None, :] < length[:, None]
    index = torch.where(inside, start[:, None] + offsets[None, :], 0)
    batch = x.shape[0]
    if time_dim == x.dim() - 1:
        # Frames last (motion [B, F, 1, T]): gather along the last axis with a broadcast index.
        shape = [batch] + [1] * (x.dim() - 2) + [max_len]
        out = x.gather(time_dim, index.view(shape).expand(*x.shape[:-1], max_len))
        return out.masked_fill(~inside.view(shape), 0)
    # Frames before contiguous trailing axes (features [B, T, d]): copy whole frame rows, which is
    # ~4x faster than an element-wise gather on a CPU.
    moved = x.movedim(time_dim, 1)
    rows = moved.reshape(batch * total, -1).index_select(
        0, (index + total * torch.arange(batch, device=x.device)[:, None]).flatten()
    )
    rows = rows.masked_fill(~inside.reshape(-1, 1), 0)
    return rows.view(batch, max_len, *moved.shape[2:]).movedim(1, time_dim)
