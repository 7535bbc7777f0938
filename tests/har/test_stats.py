"""Seed statistics, confusion matrix and per-class accuracy against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mdm_kinemic.har.stats import confusion_matrix, per_class_accuracy, summarize_seeds


def test_median_mean_std_over_five_seeds_by_hand():
    s = summarize_seeds([60.0, 70.0, 65.0, 80.0, 75.0])
    assert s.median == 70.0
    assert s.mean == 70.0
    # deviations -10, 0, -5, 10, 5 -> sum of squares 250, ddof 1 -> 250 / 4
    assert s.std == pytest.approx(math.sqrt(62.5))
    assert s.values == (60.0, 70.0, 65.0, 80.0, 75.0)


def test_median_of_an_even_number_of_seeds_and_skewed_values():
    s = summarize_seeds([87.2, 50.0, 86.0, 88.0])
    assert s.median == pytest.approx((86.0 + 87.2) / 2)
    assert s.mean == pytest.approx((87.2 + 50.0 + 86.0 + 88.0) / 4)
    assert s.median != s.mean


def test_single_seed_has_zero_std_and_no_seed_is_an_error():
    assert summarize_seeds([63.1]).std == 0.0
    with pytest.raises(ValueError):
        summarize_seeds([])


def test_confusion_matrix_and_per_class_accuracy():
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 1, 0, 1, 1, 0])
    c = confusion_matrix(labels, preds, 4)
    np.testing.assert_array_equal(c, [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    acc = per_class_accuracy(c)
    np.testing.assert_allclose(acc[:3], [200 / 3, 100.0, 0.0])
    assert np.isnan(acc[3])


def test_balanced_accuracy_is_mean_recall_and_exposes_the_majority_plateau():
    from mdm_kinemic.har.stats import balanced_accuracy

    # the Bandai test set 99/212/161; never predicting class 0 (all sent to class 1), the
    # rest right: top-1 (212 + 161) / 472 = 79.03 %, balanced (0 + 100 + 100) / 3
    labels = np.repeat([0, 1, 2], [99, 212, 161])
    predictions = np.where(labels == 0, 1, labels)
    conf = confusion_matrix(labels, predictions, 3)
    assert 100 * np.mean(labels == predictions) == pytest.approx(79.025, abs=1e-3)
    assert balanced_accuracy(conf) == pytest.approx(200 / 3)
    # classes without test clips do not count: recalls 50 and 100 -> 75
    assert balanced_accuracy(np.array([[1, 1, 0], [0, 0, 0], [0, 0, 3]])) == pytest.approx(75.0)
    with pytest.raises(ValueError, match="at least one"):
        balanced_accuracy(np.zeros((2, 2)))


def test_convergence_flags_a_class_predicted_for_under_five_percent_of_its_training_clips():
    from mdm_kinemic.har.stats import is_converged

    # class 0: 1 of 20 training clips predicted right = 5 % -> just converged; 0 of 20 -> not
    assert is_converged(np.array([[1, 19], [0, 10]]))
    assert not is_converged(np.array([[0, 20], [0, 10]]))
    # a class without training clips is not judged
    assert is_converged(np.array([[0, 0], [0, 10]]))
