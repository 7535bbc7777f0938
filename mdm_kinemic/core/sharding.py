"""A KineMIC batch split over processes: what the objective needs to give one shard its part of
the whole batch's loss.

Under data parallelism (``torchrun``, one process per device) each rank holds the rows
``start:stop`` of the global batch of B (target, prior) pairs, computes its loss, and the
gradients are averaged over the W ranks. For that average to be the gradient of the one-process
loss:

* every per-sample mean becomes ``sum over the shard x W / B`` (:meth:`BatchShard.mean`): the
  ranks' average is then the mean over all B pairs, whatever the shard sizes;
* Eq. 1 couples samples: each anchor's candidates are the priors of the *whole* batch. The
  shard's context vectors z^P are gathered from every rank with their gradient
  (:attr:`BatchShard.gather`), and the anchors' sum is divided by the number of anchors with a
  positive over all ranks (:attr:`BatchShard.sum_over_ranks`);
* per-sample random draws (condition dropout, the q_sample noise) are drawn for all B rows with
  the generator every rank shares and sliced (:meth:`BatchShard.draw`), so each pair gets the
  draw it gets in one process.

A :meth:`BatchShard.whole` batch (one process) leaves every computation exactly as it was;
:func:`rank_shard` builds a rank's shard on torch.distributed (mdm_kinemic/distributed.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Callable, Mapping, Sequence

from torch import Tensor

from mdm_kinemic.distributed import Ranks

__all__ = ["BatchShard", "merge_shard_scalars", "rank_shard", "shard_bounds", "shard_rows"]


def _identity(tensor: Tensor) -> Tensor:
    return tensor


def shard_bounds(global_size: int, world_size: int) -> list[tuple[int, int]]:
    """Contiguous rows of each rank: the first ``B mod W`` ranks hold one row more.

    Args:
        global_size: B, rows of the whole batch (>= world_size).
        world_size: W, number of ranks (>= 1).

    Returns:
        W pairs (start, stop), in rank order, covering 0..B.

    Raises:
        ValueError: W < 1 or B < W (a rank without rows).
    """
    if world_size < 1 or global_size < world_size:
        raise ValueError(f"a batch of {global_size} pairs cannot be split over {world_size} ranks with a row each; "
                         f"use --nproc_per_node {max(1, min(world_size, global_size))} or fewer")
    base, extra = divmod(global_size, world_size)
    bounds, start = [], 0
    for rank in range(world_size):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass(frozen=True)
class BatchShard:
    """The rows ``start:stop`` of a batch of ``global_size`` pairs, held by one of ``world_size`` ranks.

    Attributes:
        start, stop: this rank's rows of the global batch.
        global_size: B.
        world_size: W.
        gather: [b, ...] of this rank -> [B, ...] of every rank in rank order; the gradient of
            each rank's rows flows back to that rank (identity for one process).
        sum_over_ranks: a tensor summed over the ranks (identity for one process).
        rank_sizes: every rank's b, in rank order (summing to B); empty for one process, where
            it is (B,).

    Raises:
        ValueError: rows outside 0..B, W < 1, or rank sizes that do not add up to B over W ranks
            or whose contiguous rows do not include start:stop.
    """

    start: int
    stop: int
    global_size: int
    world_size: int = 1
    gather: Callable[[Tensor], Tensor] = _identity
    sum_over_ranks: Callable[[Tensor], Tensor] = _identity
    rank_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.start < self.stop <= self.global_size:
            raise ValueError(f"BatchShard rows {self.start}:{self.stop} of {self.global_size} over {self.world_size} "
                             "ranks: need 0 <= start < stop <= global_size and world_size >= 1")
        if not self.rank_sizes and self.world_size == 1:
            object.__setattr__(self, "rank_sizes", (self.global_size,))
        if self.rank_sizes:
            offsets = list(accumulate(self.rank_sizes, initial=0))
            if (len(self.rank_sizes) != self.world_size or offsets[-1] != self.global_size
                    or (self.start, self.stop) not in zip(offsets, offsets[1:])):
                raise ValueError(f"BatchShard rank sizes {self.rank_sizes}: need {self.world_size} sizes adding up to "
                                 f"{self.global_size}, whose contiguous rows include this shard's "
                                 f"{self.start}:{self.stop}")

    @classmethod
    def whole(cls, size: int) -> "BatchShard":
        """The whole batch in one process."""
        return cls(0, size, size)

    @property
    def size(self) -> int:
        """b, rows of this shard."""
        return self.stop - self.start

    @property
    def is_whole(self) -> bool:
        return self.world_size == 1 and self.size == self.global_size

    def mean(self, values: Tensor) -> Tensor:
        """This shard's part of the batch mean of per-sample ``values`` [b]: the ranks' average of it
        is the mean over all B samples (``values.mean()`` for the whole batch)."""
        if self.is_whole:
            return values.mean()
        return values.sum() * (self.world_size / self.global_size)

    def draw(self, sample: Callable[[int], Tensor]) -> Tensor:
        """``sample(B)`` sliced to this shard's rows: a per-sample random draw that gives each pair
        the value it gets in one process, as long as every rank's generator is in the same state."""
        drawn = sample(self.global_size)
        return drawn if self.is_whole else drawn[self.start : self.stop]


def rank_shard(ranks: Ranks, global_size: int) -> BatchShard:
    """The contiguous rows of a batch of ``global_size`` pairs that rank ``ranks.rank`` holds, with a
    gather over the ranks that carries gradients back and a sum over the ranks.

    Raises:
        ValueError: fewer pairs than ranks.
    """
    bounds = shard_bounds(global_size, ranks.world_size)
    start, stop = bounds[ranks.rank]
    if ranks.world_size == 1:
        return BatchShard(start, stop, global_size)
    sizes = tuple(b - a for a, b in bounds)
    return BatchShard(start, stop, global_size, ranks.world_size,
                      gather=lambda tensor: ranks.gather_rows(tensor, sizes), sum_over_ranks=ranks.sum, rank_sizes=sizes)


#: how a logged scalar of :meth:`ObjectiveOutput.scalars` combines over shards: the loss terms
#: scaled by :meth:`BatchShard.mean` average over ranks, counts add up, extremes stay extremes;
#: every other scalar is a per-sample mean, weighted by the shard sizes.
_SCALAR_RULES: Mapping[str, str] = {"loss": "rank_mean", "contrastive": "rank_mean", "contrastive_excluded": "sum",
                                    "dww_min": "min", "dww_max": "max", "grad_norm_before_clip": "first"}


def merge_shard_scalars(per_rank: Sequence[Mapping[str, float]], sizes: Sequence[int]) -> dict[str, float]:
    """The scalars one process would log for the whole batch, from each rank's own.

    Args:
        per_rank: every rank's ``ObjectiveOutput.scalars()`` (plus the step's gradient norm), rank order.
        sizes: every rank's shard size b.

    Returns:
        {name: value}: the loss and Eq. 1 term averaged over ranks, ``contrastive_excluded``
        summed, ``dww_min``/``dww_max`` the extremes, the gradient norm (already averaged) rank 0's,
        every other scalar (per-sample means) weighted by shard size.

    Raises:
        ValueError: ranks that logged other names, or sizes that do not match.
    """
    if len(per_rank) != len(sizes) or not per_rank:
        raise ValueError(f"{len(per_rank)} ranks' scalars for {len(sizes)} shard sizes")
    names = list(per_rank[0])
    if any(list(s) != names for s in per_rank):
        raise ValueError("every rank must log the same scalars")
    total = float(sum(sizes))
    merged: dict[str, float] = {}
    for name in names:
        values = [float(s[name]) for s in per_rank]
        rule = _SCALAR_RULES.get(name, "weighted")
        if rule == "rank_mean":
            merged[name] = sum(values) / len(values)
        elif rule == "sum":
            merged[name] = sum(values)
        elif rule == "min":
            merged[name] = min(values)
        elif rule == "max":
            merged[name] = max(values)
        elif rule == "first":
            merged[name] = values[0]
        else:
            merged[name] = sum(v * n for v, n in zip(values, sizes)) / total
    return merged


def shard_rows(tensor: Tensor | None, shard: BatchShard) -> Tensor | None:
    """Rows ``start:stop`` of a [B, ...] tensor (None stays None)."""
    if tensor is None or shard.is_whole:
        return tensor
    return tensor[shard.start : shard.stop]

