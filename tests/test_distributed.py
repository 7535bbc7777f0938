"""distributed.py: the ranks torchrun announces, their devices, and how work units are dealt."""

from __future__ import annotations

import json

import pytest
import torch

from mdm_kinemic.distributed import Ranks, rank_device, shard_by_cost, torch_device


def test_units_go_longest_first_to_the_least_loaded_rank():
    # 5 -> r0; 3 -> r1 (0 < 5); 3 -> r1 (3 < 5); 2 -> r0 (5 < 6); 1 -> r1 (6 < 7): loads 7 and 7
    assert shard_by_cost([5, 3, 3, 2, 1], 2) == [[0, 3], [1, 2, 4]]
    assert shard_by_cost([5, 3, 3, 2, 1], 1) == [[0, 1, 2, 3, 4]]
    assert shard_by_cost([4, 4], 3) == [[0], [1], []]  # equal costs: the lower index first, to rank 0
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        shard_by_cost([1], 0)


def test_a_single_process_keeps_its_device_and_ranks_pick_their_gpu(monkeypatch):
    two = Ranks(rank=3, world_size=4, local_rank=3)
    assert rank_device("cuda", Ranks()) == "cuda"
    assert rank_device("cpu", two) == "cpu" and rank_device("cuda:1", two) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rank_device("auto", two) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert rank_device("auto", two) == "cuda:1" and rank_device("cuda", Ranks(1, 4, 0)) == "cuda:0"


def test_auto_is_cuda_only_where_there_is_cuda_and_cuda_without_it_names_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_device("auto") == torch.device("cpu") and torch_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device cuda:1: CUDA is not available on this machine; use --device cpu \\(or -1\\)"):
        torch_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_device("auto") == torch.device("cuda") and torch_device("cuda:1") == torch.device("cuda", 1)


def test_without_torchrun_a_process_is_a_world_of_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ranks = Ranks.from_env()
    assert ranks == Ranks(0, 1, 0) and ranks.is_main
    assert ranks.broadcast({"a": 1}) == {"a": 1} and ranks.all_gather(7) == [7]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2 is outside 0..WORLD_SIZE-1 = 0..1"):
        Ranks.from_env()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="must be integers"):
        Ranks.from_env()


SCRIPT = """
import json, sys
from mdm_kinemic.distributed import Ranks
ranks = Ranks.from_env()
shared = ranks.broadcast({"plan": [1, 2, 3]} if ranks.is_main else None)
gathered = ranks.all_gather(ranks.rank * 10)
def refuse():
    raise ValueError(f"refused on rank {ranks.rank}")
try:
    ranks.on_main(refuse)
    raised = None
except ValueError as err:
    raised = str(err)
ranks.barrier()
with open(f"{sys.argv[1]}/rank{ranks.rank}.json", "w") as f:
    json.dump({"rank": ranks.rank, "world": ranks.world_size, "shared": shared, "gathered": gathered,
               "raised": raised}, f)
ranks.close()
"""


def test_two_gloo_ranks_share_rank_zeros_object_and_gather_in_rank_order(torchrun, tmp_path):
    (tmp_path / "probe.py").write_text(SCRIPT)
    done = torchrun([str(tmp_path / "probe.py"), str(tmp_path)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        # rank 0 alone ran the work; its exception is raised on every rank
        assert record == {"rank": rank, "world": 2, "shared": {"plan": [1, 2, 3]}, "gathered": [0, 10],
                          "raised": "refused on rank 0"}
