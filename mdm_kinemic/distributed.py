"""Running a command as ranks of ``torchrun`` (torch.distributed): who this process is, and how work is split.

``torchrun --nproc_per_node N -m mdm_kinemic.synth ...`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment (torch/distributed/run.py); ``Ranks.from_env``
joins them into one process group. The commands only exchange small Python objects (plans,
per-seed results), so the group uses the gloo backend on CPU and on CUDA alike. A process
started without torchrun is a world of one, and every collective is then a no-op.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Ranks", "rank_device", "shard_by_cost"]


@dataclass(frozen=True)
class Ranks:
    """This process's place among the ranks of one command.

    Attributes:
        rank: 0..world_size-1; rank 0 writes the shared outputs.
        world_size: number of processes.
        local_rank: rank on this machine (picks the CUDA device).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one that writes labels, lists, manifests and result files."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        """The ranks torchrun announced in the environment; joins (once) the gloo process group.

        Raises:
            ValueError: WORLD_SIZE or RANK is not an integer, or RANK is outside 0..WORLD_SIZE-1.
        """
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as err:
            raise ValueError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun): {err}") from err
        if not 0 <= rank < max(world, 1):
            raise ValueError(f"RANK={rank} is outside 0..WORLD_SIZE-1 = 0..{world - 1}")
        if world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("gloo")
        return cls(rank, max(world, 1), local)

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (picklable)."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank (picklable)."""
        if self.world_size == 1:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def close(self) -> None:
        """Leave the process group (after the last collective)."""
        if self.world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def rank_device(name: str, ranks: Ranks) -> str:
    """The torch device a rank uses for a command's ``--device`` value.

    With several ranks, 'auto' and 'cuda' mean the rank's own GPU, cuda:LOCAL_RANK (one rank per
    GPU, as ``torchrun --nproc_per_node`` = GPUs); 'auto' without CUDA and every explicit device
    ('cpu', 'cuda:N') are kept. A single process keeps ``name`` as it is.
    """
    if ranks.world_size == 1 or name not in ("auto", "cuda"):
        return name
    import torch

    if torch.cuda.is_available():
        return f"cuda:{ranks.local_rank % torch.cuda.device_count()}"
    return "cpu" if name == "auto" else name


def shard_by_cost(costs: Sequence[float], world_size: int) -> list[list[int]]:
    """Deal work units to ranks so that their summed costs are close (longest first, to the least loaded).

    Deterministic in (costs, world_size): every rank computes the same assignment.

    Args:
        costs: cost of each unit (e.g. motions x frames of a sampling batch), >= 0.
        world_size: number of ranks, >= 1.

    Returns:
        For each rank, the indices of its units, ascending.

    Raises:
        ValueError: world_size < 1.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    loads = [(0.0, r) for r in range(world_size)]
    shards: list[list[int]] = [[] for _ in range(world_size)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, rank = heapq.heappop(loads)
        shards[rank].append(index)
        heapq.heappush(loads, (load + float(costs[index]), rank))
    return [sorted(s) for s in shards]
