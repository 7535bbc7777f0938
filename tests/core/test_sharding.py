"""core/sharding.py: how a batch is split over ranks, and what each shard's loss and logs become."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.core.objective import KineMICBatch
from mdm_kinemic.core.sharding import BatchShard, merge_shard_scalars, rank_shard, shard_bounds, shard_rows
from mdm_kinemic.distributed import Ranks


def test_rows_are_contiguous_and_the_first_ranks_take_the_remainder():
    assert shard_bounds(30, 4) == [(0, 8), (8, 16), (16, 23), (23, 30)]
    assert shard_bounds(5, 1) == [(0, 5)]
    with pytest.raises(ValueError, match="cannot be split over 3 ranks"):
        shard_bounds(2, 3)
    assert rank_shard(Ranks(), 5) == BatchShard.whole(5)  # one process: the whole batch


def test_a_shard_knows_every_ranks_size_for_merging_their_logs():
    assert BatchShard.whole(5).rank_sizes == (5,)
    third = rank_shard(Ranks(rank=2, world_size=4, local_rank=2), 30)
    assert (third.start, third.stop, third.rank_sizes) == (16, 23, (8, 8, 7, 7))
    with pytest.raises(ValueError, match="need 2 sizes adding up to 5, whose contiguous rows include this shard's 0:3"):
        BatchShard(0, 3, 5, 2, rank_sizes=(2, 2))
    with pytest.raises(ValueError, match="include this shard's 0:2"):  # its size is there, at rank 1's rows 3:5
        BatchShard(0, 2, 5, 2, rank_sizes=(3, 2))
    assert BatchShard(3, 5, 5, 2, rank_sizes=(3, 2)).size == 2


def test_the_ranks_average_of_shard_means_is_the_batch_mean():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    parts = [BatchShard(a, b, 5, 2).mean(values[a:b]) for a, b in shard_bounds(5, 2)]
    # rank 0: (1 + 2 + 3) x 2 / 5 = 2.4; rank 1: (4 + 5) x 2 / 5 = 3.6; their mean 3.0
    assert [round(float(p), 6) for p in parts] == [2.4, 3.6]
    assert float(sum(parts) / 2) == pytest.approx(float(values.mean()))
    assert float(BatchShard.whole(5).mean(values)) == 3.0


def test_draws_are_made_for_the_whole_batch_and_cut():
    shard = BatchShard(2, 4, 5, 2)
    assert shard.draw(lambda n: torch.arange(n)).tolist() == [2, 3]
    assert BatchShard.whole(3).draw(lambda n: torch.arange(n)).tolist() == [0, 1, 2]
    assert shard_rows(torch.arange(5), shard).tolist() == [2, 3] and shard_rows(None, shard) is None
    assert shard_rows(torch.arange(3), BatchShard.whole(3)).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="need 0 <= start < stop"):
        BatchShard(3, 3, 5, 2)


def test_a_batch_cuts_into_its_pairs():
    batch = KineMICBatch(x0_target=torch.zeros(3, 2, 1, 4), target_lengths=torch.tensor([4, 3, 2]),
                         target_action=torch.tensor([0, 1, 2]), target_text=["a", "b", "c"],
                         x0_prior=torch.zeros(3, 2, 1, 6), prior_lengths=torch.tensor([6, 5, 4]), prior_text=["x", "y", "z"])
    part = batch.rows(BatchShard(1, 3, 3, 2))
    assert part.target_text == ["b", "c"] and part.prior_text == ["y", "z"]
    assert part.target_lengths.tolist() == [3, 2] and part.prior_lengths.tolist() == [5, 4] and part.prior_action is None
    assert batch.rows(BatchShard.whole(3)) is batch
    with pytest.raises(ValueError, match="a shard of a 4-pair batch"):
        batch.rows(BatchShard(0, 2, 4, 2))


def test_logged_scalars_merge_as_one_process_would_log_them():
    rank0 = {"loss": 1.0, "rec_target": 0.3, "contrastive": 0.5, "contrastive_excluded": 1.0, "dww_min": 0.2,
             "dww_max": 0.9, "grad_norm_before_clip": 4.0}
    rank1 = {"loss": 3.0, "rec_target": 0.6, "contrastive": 1.5, "contrastive_excluded": 2.0, "dww_min": 0.1,
             "dww_max": 0.7, "grad_norm_before_clip": 4.0}
    merged = merge_shard_scalars([rank0, rank1], [3, 2])
    # loss terms scaled per shard average over ranks; per-sample means weigh by rows: (3 x 0.3 + 2 x 0.6) / 5 = 0.42
    assert merged == pytest.approx({"loss": 2.0, "rec_target": 0.42, "contrastive": 1.0, "contrastive_excluded": 3.0,
                                    "dww_min": 0.1, "dww_max": 0.9, "grad_norm_before_clip": 4.0})
    with pytest.raises(ValueError, match="the same scalars"):
        merge_shard_scalars([rank0, {"loss": 1.0}], [3, 2])



def test_the_authors_broadcast_form_is_refused_on_a_shard(make_tiny_denoiser, q_sample):
    from mdm_kinemic.core.mic import MICModule
    from mdm_kinemic.core.objective import KineMICObjective, ObjectiveSettings

    settings = ObjectiveSettings.preset("full", distillation_normalisation="authors_broadcast")
    objective = KineMICObjective(make_tiny_denoiser(n_actions=2), make_tiny_denoiser(seed=1), MICModule(16), q_sample,
                                 settings)
    batch = KineMICBatch(x0_target=torch.zeros(2, 6, 1, 4), target_lengths=torch.tensor([4, 3]),
                         target_action=torch.tensor([0, 1]), target_text=["a", "b"], x0_prior=torch.zeros(2, 6, 1, 8),
                         prior_lengths=torch.tensor([8, 6]), prior_text=["x", "y"])
    with pytest.raises(ValueError, match="authors_broadcast couples the whole batch"):
        objective(batch, torch.tensor([1, 2]), shard=BatchShard(0, 2, 4, 2))
    assert objective(batch, torch.tensor([1, 2])).loss.isfinite()  # the whole batch in one process
