"""ST-GCN training under a HarProtocol: it learns, seeds reproduce, the schedule is cosine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.protocol import HarProtocol
from mdm_kinemic.har.train import cosine_lr, top1, train_stgcn


def test_stgcn_separates_a_trivial_three_class_set_in_a_few_epochs(make_clips):
    # whole-body bounce / sway / stand, 12-frame clips, 8 steps per epoch. The paper's ST-GCN at
    # 16 channels instead of 64 to stay within seconds on CPU; lr 0.03 because lr 0.1 on 6-clip
    # batches kills ReLUs in the first steps (the paper's lr is for batches of 64).
    train = make_clips(15, 12, seed=0, source="train")
    test = make_clips(5, 12, seed=1, source="test")
    protocol = HarProtocol(seeds=1, epochs=6, batch_size=6, lr=0.03, clip_len=12, base_channels=16, track_max_over_epochs=False)
    trained = train_stgcn(train, protocol, seed=0)
    assert top1(trained.predict(test), test.labels) >= 95.0
    assert not trained.model.training


def test_same_seed_reproduces_a_run_and_another_seed_does_not(make_clips):
    train = make_clips(2, 10, seed=0)
    protocol = HarProtocol(epochs=2, batch_size=4, clip_len=10, base_channels=8, track_max_over_epochs=False)
    runs = [train_stgcn(train, protocol, seed=s) for s in (3, 3, 4)]
    params = [torch.cat([p.detach().flatten() for p in r.model.parameters()]) for r in runs]
    assert torch.equal(params[0], params[1])
    assert not torch.equal(params[0], params[2])
    probs = [r.embed(train)[0] for r in runs[:2]]
    np.testing.assert_array_equal(probs[0], probs[1])


def test_max_over_epochs_tracking_tests_after_every_epoch(make_clips):
    train, test = make_clips(2, 10, seed=0), make_clips(1, 10, seed=1)
    protocol = HarProtocol(epochs=3, batch_size=4, clip_len=10, base_channels=8, track_max_over_epochs=True)
    trained = train_stgcn(train, protocol, seed=0, test=test)
    assert len(trained.epoch_test_top1) == 3
    assert trained.epoch_test_top1[-1] == top1(trained.predict(test), test.labels)


def test_cosine_schedule_by_hand():
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 25, 100) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_training_rejects_empty_and_too_short_sets(make_clips):
    protocol = HarProtocol(epochs=1, clip_len=10)
    empty = SkeletonClips([], np.zeros(0, np.int64), ("a",), [], "data/empty")
    with pytest.raises(ValueError, match="data/empty: the training set is empty"):
        train_stgcn(empty, protocol, seed=0)
    with pytest.raises(ValueError, match="temporal kernel of 9 frames"):
        train_stgcn(make_clips(1, 6, seed=0), protocol, seed=0)


def test_embedding_rejects_a_different_skeleton(make_clips):
    protocol = HarProtocol(epochs=1, batch_size=4, clip_len=10, base_channels=8, track_max_over_epochs=False)
    trained = train_stgcn(make_clips(1, 10, seed=0), protocol, seed=0)
    ntu = SkeletonClips([np.zeros((10, 25, 3), np.float32)], np.array([0]), ("stand",), ["n"], "data/ntu")
    with pytest.raises(ValueError, match="25 joints.*22"):
        trained.embed(ntu)


def test_a_run_records_its_epochs_and_iterations(make_clips):
    train = make_clips(2, 10, seed=0)  # 6 clips, batch 4: 2 iterations per epoch
    protocol = HarProtocol(epochs=1, batch_size=4, clip_len=10, base_channels=8, min_iterations=5)
    trained = train_stgcn(train, protocol, seed=0)
    assert (trained.epochs, trained.iterations) == (3, 6)
