"""Paired bootstrap of balanced-accuracy differences against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.har.paired import paired_difference, paired_runs, pooled_paired_difference, pooled_paired_runs

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])


def test_identical_predictions_differ_by_zero_with_a_zero_interval():
    rng = np.random.default_rng(0)
    preds = rng.integers(0, 3, (4, LABELS.size))
    d = paired_difference(LABELS, preds, preds.copy(), resamples=200)
    assert d.mean == 0.0 and d.ci95 == (0.0, 0.0) and d.per_seed == (0.0,) * 4 and not d.resolved


def test_right_on_every_clip_the_other_gets_wrong():
    right = np.tile(LABELS, (3, 1))
    wrong = (right + 1) % 3
    d = paired_difference(LABELS, right, wrong, resamples=200)
    assert d.mean == 100.0 and d.ci95 == (100.0, 100.0) and d.resolved
    reverse = paired_difference(LABELS, wrong, right, resamples=200)
    assert reverse.mean == -100.0 and reverse.resolved


def test_a_known_difference_per_seed():
    # seed 0: B misses one of class 0's 3 clips -> recalls (66.7, 100, 100) vs A's (100, 100, 100):
    # difference (33.3 + 0 + 0) / 3 = 11.11; seed 1: B misses one of class 1's 2 clips: 50 / 3 = 16.67
    a = np.tile(LABELS, (2, 1))
    b = a.copy()
    b[0, 0] = 1
    b[1, 3] = 0
    d = paired_difference(LABELS, a, b, resamples=500)
    assert d.per_seed == pytest.approx((100 / 9, 50 / 3))
    assert d.mean == pytest.approx((100 / 9 + 50 / 3) / 2)
    # A is never worse on any resample, and a resample may miss B's error entirely
    assert d.ci95[0] == pytest.approx(0.0) and d.ci95[0] <= d.mean <= d.ci95[1] <= 100 / 3 + 1e-9
    assert not d.resolved


def test_the_bootstrap_is_reproducible_by_seed():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 60)
    a, b = rng.integers(0, 3, (5, 60)), rng.integers(0, 3, (5, 60))
    first, again = paired_difference(labels, a, b, seed=7), paired_difference(labels, a, b, seed=7)
    assert first == again
    assert paired_difference(labels, a, b, seed=8).ci95 != first.ci95
    assert first.ci95[0] < first.mean < first.ci95[1]


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference(LABELS, np.zeros((2, 9)), np.zeros((3, 9)))
    run = {"seeds": [0, 1], "test_ids": ["a", "b"], "classes": ["x", "y"], "test_labels": [0, 1],
           "test_predictions_per_seed": [[0, 1], [0, 0]]}
    assert paired_runs(run, {**run, "test_predictions_per_seed": [[0, 0], [0, 0]]}).per_seed == (50.0, 0.0)
    with pytest.raises(ValueError, match="differ in seeds"):
        paired_runs(run, {**run, "seeds": [0, 2]})
    with pytest.raises(ValueError, match="no per-seed test predictions"):
        paired_runs(run, {"seeds": [0, 1]})


def test_grouped_seeds_widen_the_interval_of_a_generator_effect():
    """Three generators (groups) of five recogniser seeds each: A beats B by 20 points on one generator
    and loses by 10 on the two others. Seeds resampled as independent resolve a difference that
    rests on three generators; resampled by generator first, the interval is wider."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    b = np.where(rng.random((15, 100)) < 0.8, labels, 1 - labels)
    a = b.copy()
    for seed in range(15):
        flip = rng.choice(100, 10 if seed < 5 else 5, replace=False)
        a[seed, flip] = labels[flip] if seed < 5 else 1 - labels[flip]
    groups = np.repeat([0, 1, 2], 5)
    flat = paired_difference(labels, a, b, resamples=500)
    grouped = paired_difference(labels, a, b, resamples=500, groups=groups)
    assert flat.per_seed == grouped.per_seed and flat.mean == grouped.mean
    assert grouped.ci95[1] - grouped.ci95[0] > 1.5 * (flat.ci95[1] - flat.ci95[0])
    with pytest.raises(ValueError, match="one group per seed"):
        paired_difference(labels, a, b, resamples=10, groups=groups[:4])


def test_one_stratum_pools_to_its_own_paired_difference():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 40)
    a, b = rng.integers(0, 3, (4, 40)), rng.integers(0, 3, (4, 40))
    groups = np.array([0, 0, 1, 1])
    alone = paired_difference(labels, a, b, resamples=300, groups=groups)
    assert pooled_paired_difference([(labels, a, b, groups)], resamples=300) == alone
    # the figures of the implementation before pooling existed (the benchmark's records were written by it)
    assert alone.mean == pytest.approx(-3.769841269841269, abs=1e-12)
    assert alone.ci95 == pytest.approx((-20.540674603174605, 15.401785714285692), abs=1e-9)


def test_pooled_strata_weigh_the_same_whatever_their_seeds_and_clips():
    # stratum 1: A right and B wrong on every clip (+100, 3 seeds); stratum 2: identical (0, 2 seeds,
    # other clips): the mean over strata is 50 in every replicate, not (3 x 100 + 2 x 0) / 5 = 60
    right = np.tile(LABELS, (3, 1))
    other = np.array([0, 1, 1, 0])
    same = np.tile(other, (2, 1))
    d = pooled_paired_difference([(LABELS, right, (right + 1) % 3, None), (other, same, same.copy(), None)],
                                 resamples=200)
    assert d.mean == 50.0 and d.ci95 == (50.0, 50.0) and d.resolved
    assert d.per_seed == (100.0, 100.0, 100.0, 0.0, 0.0)


def test_pooling_two_independent_strata_narrows_the_interval():
    rng = np.random.default_rng(3)

    def stratum():
        labels = rng.integers(0, 3, 90)
        b = np.where(rng.random((4, 90)) < 0.7, labels, (labels + 1) % 3)
        a = np.where(rng.random((4, 90)) < 0.1, labels, b)
        return labels, a, b, None

    first, second = stratum(), stratum()
    widths = [np.diff(paired_difference(*s[:3], resamples=1000).ci95)[0] for s in (first, second)]
    pooled = pooled_paired_difference([first, second], resamples=1000)
    assert np.diff(pooled.ci95)[0] < min(widths)
    assert pooled.mean == pytest.approx(np.mean([paired_difference(*s[:3], resamples=10).mean for s in (first, second)]))


def test_pooled_runs_may_hold_other_clips_per_stratum_but_pair_within_one():
    run = {"seeds": [0, 1], "test_ids": ["a", "b"], "classes": ["x", "y"], "test_labels": [0, 1],
           "test_predictions_per_seed": [[0, 1], [0, 0]]}
    elsewhere = {**run, "test_ids": ["c", "d", "e"], "test_labels": [1, 1, 0],
                 "test_predictions_per_seed": [[1, 1, 0], [1, 1, 0]]}
    d = pooled_paired_runs([(run, {**run, "test_predictions_per_seed": [[0, 0], [0, 0]]}),
                            (elsewhere, {**elsewhere, "test_predictions_per_seed": [[0, 1, 0], [1, 1, 0]]})])
    # split 1: (50, 0); split 2, seed 0: recalls per class (0, 1) A (100, 100) vs B (100, 50) -> 25; seed 1: 0
    assert d.per_seed == (50.0, 0.0, 25.0, 0.0) and d.mean == pytest.approx((25.0 + 12.5) / 2)
    with pytest.raises(ValueError, match="differ in test_ids"):
        pooled_paired_runs([(run, elsewhere)])
    with pytest.raises(ValueError, match="at least one stratum"):
        pooled_paired_runs([])
