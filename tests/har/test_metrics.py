"""FID, diversity and multimodality against closed forms and hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.har.metrics import (
    ACTION2MOTION,
    TEXT2MOTION,
    activation_statistics,
    class_conditions,
    diversity,
    fid,
    frechet_distance,
    generative_metrics,
    multimodality_by_class,
    multimodality_grouped,
)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(8, 8))
    return rng.normal(size=(400, 8)) @ mixing


def test_fid_of_a_set_with_itself_is_zero(features):
    assert fid(features, features) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_fid_grows_with_a_mean_shift_as_the_closed_form_says(features, scale):
    # same covariance, means apart by delta: FID = ||delta||^2
    delta = scale * np.arange(1.0, 9.0)
    assert fid(features + delta, features) == pytest.approx(float(delta @ delta), rel=1e-6)


def test_fid_of_scaled_covariance_matches_the_closed_form(features):
    # Sigma_2 = 4 Sigma_1: Tr(S + 4S - 2 (4 S^2)^(1/2)) = Tr(S)
    centred = features - features.mean(axis=0)
    _, sigma = activation_statistics(centred)
    assert fid(2.0 * centred, centred) == pytest.approx(np.trace(sigma), rel=1e-6)


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    # 1-D: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(4 + 4 + 9 - 12)
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_diversity_of_a_regular_simplex(features):
    # 5 points with all pairwise distances 2: the mean distance of the drawn pairs is 2 times the
    # share of pairs whose two members differ; the draws are rng.integers(0, N, pairs), twice.
    points = np.sqrt(2.0) * np.eye(5)
    value = diversity(points, 200, np.random.default_rng(7), with_replacement=True)
    rng = np.random.default_rng(7)
    first, second = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert value == pytest.approx(2.0 * np.mean(first != second))
    assert 1.2 < value < 1.9


def test_diversity_without_replacement_on_collinear_points():
    points = np.arange(400, dtype=np.float64)[:, None] * np.array([[3.0, 4.0]])  # |i - j| * 5 apart
    value = diversity(points, 300, np.random.default_rng(1), with_replacement=False)
    rng = np.random.default_rng(1)
    first, second = rng.choice(400, 300, replace=False), rng.choice(400, 300, replace=False)
    assert value == pytest.approx(5.0 * np.abs(first - second).mean())
    with pytest.raises(ValueError, match="only 299"):
        diversity(points[:299], 300, np.random.default_rng(1), with_replacement=False)


def test_diversity_of_identical_points_is_zero_and_scales_linearly(features):
    assert diversity(np.ones((10, 3)), 200, np.random.default_rng(0)) == 0.0
    a = diversity(features, 200, np.random.default_rng(3))
    b = diversity(2.5 * features, 200, np.random.default_rng(3))
    assert b == pytest.approx(2.5 * a)


def test_multimodality_by_class_only_pairs_within_a_class():
    # class 0 at the origin, class 1 at x = 10, 11: same-class distances are 0 or 1, never 10
    feats = np.array([[0.0], [0.0], [10.0], [11.0]])
    labels = np.array([0, 0, 1, 1])
    value = multimodality_by_class(feats, labels, 20, np.random.default_rng(2))
    rng = np.random.default_rng(2)
    rng.integers(0, 2, 20), rng.integers(0, 2, 20)  # class 0 draws: all distances 0
    f1, s1 = rng.integers(0, 2, 20), rng.integers(0, 2, 20)
    assert value == pytest.approx(np.mean(np.concatenate([np.zeros(20), (f1 != s1).astype(float)])))


def test_text_to_motion_multimodality_on_a_grid():
    # condition g, repeat r at position 10 g + r: within a condition, pairs are |r1 - r2| apart
    grouped = (10.0 * np.arange(4)[:, None] + np.arange(30)[None, :])[..., None]
    value = multimodality_grouped(grouped, 10, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    first, second = rng.choice(30, 10, replace=False), rng.choice(30, 10, replace=False)
    assert value == pytest.approx(np.abs(first - second).mean())
    with pytest.raises(ValueError, match="R >= 10"):
        multimodality_grouped(grouped[:, :9], 10, np.random.default_rng(5))


def test_class_conditions_cycle_classes_and_need_enough_clips():
    labels = np.repeat([0, 1, 2], 40)
    groups = class_conditions(labels, 100, 30, np.random.default_rng(0))
    assert groups.shape == (100, 30)
    for g in range(100):
        assert set(labels[groups[g]]) == {g % 3}
        assert len(set(groups[g])) == 30
    with pytest.raises(ValueError, match="30 clips per class"):
        class_conditions(np.repeat([0, 1], [40, 10]), 100, 30, np.random.default_rng(0))


def test_generative_metrics_names_its_definition(features):
    labels = np.arange(400) % 4
    out = generative_metrics(features, labels, labels, features, ACTION2MOTION, np.random.default_rng(0))
    assert out["definition"] == "action2motion" and out["accuracy"] == 100.0
    assert out["fid"] == pytest.approx(0.0, abs=1e-6)
    t2m = generative_metrics(features, labels, np.zeros(400), features[:200], TEXT2MOTION, np.random.default_rng(0))
    assert t2m["definition"] == "text2motion" and t2m["accuracy"] == 25.0
    assert (ACTION2MOTION.diversity_pairs, ACTION2MOTION.multimodality_pairs) == (200, 20)
    assert (TEXT2MOTION.diversity_pairs, TEXT2MOTION.multimodality_conditions, TEXT2MOTION.multimodality_repeats, TEXT2MOTION.multimodality_pairs) == (300, 100, 30, 10)
