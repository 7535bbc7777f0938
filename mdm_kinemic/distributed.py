"""Running a command as ranks of ``torchrun`` (torch.distributed): who this process is, and how work is split.

``torchrun --nproc_per_node N -m mdm_kinemic.synth ...`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment (torch/distributed/run.py); ``Ranks.from_env``
joins them into one process group. synth and har.evaluate only exchange small Python objects
(plans, per-seed results); train_fewshot exchanges the MIC context vectors of Eq. 1 and the
gradients of the trainable parameters (LoRA, action embedding, MIC), a few MB per step, so the
group uses the gloo backend on CPU and on CUDA alike. A process started without torchrun is a
world of one, and every collective is then a no-op.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Ranks", "rank_device", "shard_by_cost"]

T = TypeVar("T")


def _all_reduce_sum(tensor: Tensor) -> Tensor:
    # gloo reduces CPU tensors: a CUDA tensor goes through host memory (a few MB per step)
    host = tensor.detach().to("cpu", copy=True).contiguous()
    dist.all_reduce(host)
    return host.to(tensor.device)


class _GatherRows(torch.autograd.Function):
    """Every rank's rows [b_r, ...] concatenated in rank order [B, ...]; backward hands each rank the
    gradient of its own rows summed over every rank's loss (an all_reduce, which gloo supports)."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: tuple[int, ...], rank: int) -> Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        padded = torch.zeros((max(sizes), *tensor.shape[1:]), dtype=tensor.dtype)
        padded[: tensor.shape[0]] = tensor.detach().cpu()
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(tensor.device)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        summed = _all_reduce_sum(grad)
        start = sum(ctx.sizes[: ctx.rank])
        return summed[start : start + ctx.sizes[ctx.rank]], None, None


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
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        return cls(rank, max(world, 1), local)

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.world_size > 1:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (picklable)."""
        if self.world_size == 1:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank (picklable)."""
        if self.world_size == 1:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def on_main(self, work: Callable[[], T]) -> T:
        """Run ``work`` on rank 0 only (it may write files) and give its result, or raise its
        exception, on every rank."""
        if self.world_size == 1:
            return work()
        outcome: tuple[Any, BaseException | None] = (None, None)
        if self.is_main:
            try:
                outcome = (work(), None)
            except Exception as err:  # handed to every rank, raised there
                outcome = (None, err)
        result, error = self.broadcast(outcome)
        if error is not None:
            raise error
        return result

    def gather_rows(self, tensor: Tensor, sizes: Sequence[int]) -> Tensor:
        """Every rank's rows [sizes[r], ...] concatenated in rank order [sum(sizes), ...] on every
        rank; the gradient of each rank's rows flows back to that rank, summed over every rank's
        loss. ``tensor`` is this rank's rows (sizes[rank] of them)."""
        if self.world_size == 1:
            return tensor
        if len(sizes) != self.world_size or tensor.shape[0] != sizes[self.rank]:
            raise ValueError(f"rank {self.rank} holds {tensor.shape[0]} rows, the plan {list(sizes)} gives it "
                             f"{sizes[self.rank] if self.rank < len(sizes) else 'none'}")
        return _GatherRows.apply(tensor, tuple(sizes), self.rank)

    def sum(self, tensor: Tensor) -> Tensor:
        """``tensor`` summed over the ranks (no gradient; reduced in host memory, returned on its
        device and in its dtype)."""
        return tensor if self.world_size == 1 else _all_reduce_sum(tensor)

    def broadcast_tensors(self, tensors: Sequence[Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values (DDP's start: every rank's replica
        begins from the same weights)."""
        if self.world_size == 1 or not tensors:
            return
        flat = torch.cat([t.detach().reshape(-1).cpu() for t in tensors])
        dist.broadcast(flat, src=0)
        offset = 0
        with torch.no_grad():
            for t in tensors:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()

    def average_gradients(self, parameters: Sequence[Tensor]) -> None:
        """Replace every parameter's gradient by its mean over the ranks (one all_reduce of the
        flattened gradients, through host memory), as DDP does after backward, so that every rank
        takes the same optimizer step. A parameter without a gradient keeps none (AdamW then skips
        it, as in one process); every rank runs the same graph, so the same ones have none."""
        with_grad = [p for p in parameters if p.grad is not None]
        if self.world_size == 1 or not with_grad:
            return
        flat = _all_reduce_sum(torch.cat([p.grad.reshape(-1) for p in with_grad])) / self.world_size
        offset = 0
        for p in with_grad:
            p.grad = flat[offset : offset + p.numel()].view_as(p).to(p.grad.dtype).clone()
            offset += p.numel()

    def close(self) -> None:
        """Leave the process group (after the last collective)."""
        if self.world_size > 1:
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
    if torch.cuda.is_available():
        return f"cuda:{ranks.local_rank % torch.cuda.device_count()}"
    return "cpu" if name == "auto" else name


def torch_device(name: str) -> torch.device:
    """The torch.device of a ``--device`` value: 'auto' is CUDA when available, else the CPU.

    Raises:
        ValueError: a CUDA device asked for on a machine without CUDA (the message names the fix).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu (or -1)")
    return device


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
