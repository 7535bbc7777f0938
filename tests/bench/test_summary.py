"""summary.json from synthetic per-seed results: figures, paired differences, mean over splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_kinemic.bench.summary import build_summary, split_summary, write_summary
from mdm_kinemic.har.paired import pooled_paired_runs

LABELS = [0, 0, 1, 1]


def _run(predictions, converged=(True, True)):
    """A har_results.json run of two seeds on four test clips (two per class)."""
    conf = []
    for p in predictions:
        c = np.zeros((2, 2), int)
        np.add.at(c, (LABELS, p), 1)
        conf.append(c.tolist())
    top1 = [100 * np.mean(np.array(p) == LABELS) for p in predictions]
    return {
        "seeds": [0, 1], "classes": ["a", "b"], "test_ids": ["w", "x", "y", "z"], "test_labels": LABELS,
        "test_predictions_per_seed": [list(p) for p in predictions], "confusion_matrix_per_seed": conf,
        "top1_final_epoch": {"median": float(np.median(top1)), "mean": float(np.mean(top1)), "std": 0.0, "values": top1},
        "converged_per_seed": list(converged),
    }


RIGHT = [0, 0, 1, 1]
HALF = [0, 1, 1, 1]   # class a 50 %, class b 100 % -> balanced 75, top-1 75
WRONG = [1, 1, 0, 0]


def _runs():
    return {
        "real_only": _run([WRONG, HALF], converged=(False, True)),   # balanced 0, 75
        "mdm_lora": _run([HALF, HALF]),                               # 75, 75
        "full": _run([RIGHT, RIGHT]),                                 # 100, 100
    }


def test_split_summary_figures_and_paired_differences(tmp_path):
    s = split_summary(["run", "walk"], _runs(), 81.25)
    assert s["evaluator_balanced_accuracy"] == 81.25 and s["target_contents"] == ["run", "walk"]
    real = s["methods"]["real_only"]
    assert (real["balanced_median"], real["balanced_mean"]) == (37.5, 37.5)
    assert real["balanced_std"] == pytest.approx(np.std([0, 75], ddof=1))
    assert real["converged_seeds"] == [1] and real["seeds"] == [0, 1]
    assert "paired_vs_real_only" not in real
    full = s["methods"]["full"]
    assert full["balanced_median"] == 100.0 and full["top1_median"] == 100.0
    # full - mdm_lora: 25 on each seed; resampling class a's clips can drop mdm_lora's miss
    # (difference 0) or draw it twice (difference 50), so the interval lies within [0, 50]
    assert full["paired_vs_mdm_lora"]["mean"] == 25.0
    assert 0.0 <= full["paired_vs_mdm_lora"]["ci95"][0] <= 25.0 <= full["paired_vs_mdm_lora"]["ci95"][1] <= 50.0
    # full - real only: seed 0 100 - 0, seed 1 100 - 75 -> mean 62.5
    assert full["paired_vs_real_only"]["mean"] == 62.5
    lora = s["methods"]["mdm_lora"]
    assert lora["paired_vs_mdm_lora"] == {"mean": 0.0, "ci95": [0.0, 0.0], "resolved": False}
    path = write_summary(tmp_path / "results", build_summary({"s1": s}))
    assert json.loads(path.read_text())["splits"]["s1"]["methods"]["full"]["paired_vs_real_only"]["mean"] == 62.5


def test_mean_over_splits_averages_methods_present_in_every_split():
    first = split_summary(["run"], _runs(), 80.0)
    runs = _runs()
    runs["mdm_lora"] = _run([RIGHT, RIGHT])
    del runs["full"]
    second = split_summary(["walk"], runs, 90.0)
    summary = build_summary({"s1": first, "s2": second})
    mean = summary["mean_over_splits"]
    assert mean["splits"] == ["s1", "s2"] and mean["evaluator_balanced_accuracy"] == 85.0
    assert set(mean["methods"]) == {"real_only", "mdm_lora"}
    assert mean["methods"]["mdm_lora"]["balanced_median"] == pytest.approx((75 + 100) / 2)
    # mdm_lora - real only: split 1 (75 - 0 + 75 - 75) / 2 = 37.5; split 2 (100 + 25) / 2 = 62.5
    assert mean["methods"]["mdm_lora"]["paired_vs_real_only"] == {"mean": pytest.approx(50.0)}
    with_runs = build_summary({"s1": first, "s2": second}, {"s1": _runs(), "s2": runs})["mean_over_splits"]["methods"]
    pooled = with_runs["mdm_lora"]["paired_vs_real_only"]
    assert pooled["mean"] == pytest.approx(50.0) and pooled["ci95"][0] <= 50.0 <= pooled["ci95"][1]
    direct = pooled_paired_runs([(_runs()["mdm_lora"], _runs()["real_only"]), (runs["mdm_lora"], runs["real_only"])])
    assert pooled == direct.to_summary()
    # listed the other way round, the splits pool in the same (name) order: the same interval
    swapped = build_summary({"s2": second, "s1": first}, {"s1": _runs(), "s2": runs})["mean_over_splits"]["methods"]
    assert swapped["mdm_lora"]["paired_vs_real_only"] == pooled
    with pytest.raises(ValueError, match=r"no runs for the split\(s\) \['s2'\]"):
        build_summary({"s1": first, "s2": second}, {"s1": _runs()})
    assert with_runs["mdm_lora"]["paired_vs_mdm_lora"] == {"mean": 0.0, "ci95": [0.0, 0.0], "resolved": False}


def test_a_method_without_balanced_figures_is_refused():
    runs = _runs()
    del runs["full"]["confusion_matrix_per_seed"]
    with pytest.raises(ValueError, match="method full.*re-run its har stage"):
        split_summary(["run"], runs, None)
