"""ST-GCN training under a HarProtocol: it learns, seeds reproduce, the schedule is cosine."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.protocol import HarProtocol
from mdm_kinemic.har.train import (
    CUBLAS_WORKSPACE,
    balanced_order,
    cosine_lr,
    deterministic_algorithms,
    top1,
    train_stgcn,
)


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


def test_persons_setting_uses_the_first_bodies_and_pads_missing_ones(make_clips):
    train = make_clips(2, 10, seed=0)
    other = np.random.default_rng(1).normal(size=(10, 22, 3)).astype(np.float32)
    two_bodies = SkeletonClips([np.stack([j, other]) for j in train.joints], train.labels, train.class_names, train.ids, "two")
    one_body = SkeletonClips([j[None] for j in train.joints], train.labels, train.class_names, train.ids, "one")
    single = HarProtocol(epochs=1, batch_size=4, clip_len=10, base_channels=8)
    trained = train_stgcn(train, single, seed=0)
    # persons = 1: a second body is ignored, [T, V, 3] and [1, T, V, 3] clips are the same input
    np.testing.assert_array_equal(trained.embed(two_bodies)[0], trained.embed(train)[0])
    np.testing.assert_array_equal(trained.embed(one_body)[0], trained.embed(train)[0])
    pair = train_stgcn(two_bodies, HarProtocol(epochs=1, batch_size=4, clip_len=10, base_channels=8, persons=2), seed=0)
    # persons = 2: the second body counts, and a missing one is an all-zero body
    assert not np.array_equal(pair.embed(two_bodies)[0], pair.embed(train)[0])
    zero = SkeletonClips([np.stack([j, np.zeros_like(j)]) for j in train.joints], train.labels, train.class_names, train.ids, "z")
    np.testing.assert_array_equal(pair.embed(zero)[0], pair.embed(train)[0])


def test_epoch_log_records_loss_and_the_cosine_learning_rate(make_clips):
    train, test = make_clips(2, 10, seed=0), make_clips(1, 10, seed=1)  # 6 clips, batch 4: 2 iterations per epoch
    protocol = HarProtocol(epochs=3, batch_size=4, lr=0.1, clip_len=10, base_channels=8, track_max_over_epochs=True)
    seen = []
    trained = train_stgcn(train, protocol, seed=0, test=test, on_epoch=seen.append)
    assert seen == trained.epoch_log and [r["epoch"] for r in seen] == [1, 2, 3]
    assert [r["iterations"] for r in seen] == [2, 4, 6]
    # the lr of each epoch's last iteration (1, 3, 5 of 6)
    assert [r["lr"] for r in seen] == pytest.approx([cosine_lr(0.1, i, 6) for i in (1, 3, 5)])
    assert [r["test_top1"] for r in seen] == trained.epoch_test_top1
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in seen)


def test_deterministic_algorithms_are_set_within_the_block_and_restored():
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    with deterministic_algorithms(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (CUBLAS_WORKSPACE, ":16:8")
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == before
    with deterministic_algorithms(False):
        assert torch.are_deterministic_algorithms_enabled() == before[0]


def test_balanced_order_draws_every_class_equally_often():
    # 90 clips of class 0, 10 of class 1: a plain shuffle shows class 1 in 10 % of the draws
    labels = np.array([0] * 90 + [1] * 10)
    rng = np.random.default_rng(0)
    drawn = np.concatenate([labels[balanced_order(labels, rng)] for _ in range(200)])
    assert len(drawn) == 200 * 100
    assert abs(np.mean(drawn == 1) - 0.5) < 0.02
    again = balanced_order(labels, np.random.default_rng(7))
    assert np.array_equal(again, balanced_order(labels, np.random.default_rng(7)))
    assert again.min() >= 0 and again.max() < 100
