"""The results table: rows read from evaluate results, Markdown and JSON outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdm_kinemic.har.results_table import (
    MethodRow,
    parse_row_spec,
    row_from_results,
    to_markdown,
    write_results_table,
)


def _results(median, mean, std, fid=None, with_synth=True):
    def run(m):
        return {
            "top1_final_epoch": {"median": m, "mean": mean, "std": std, "values": [1, 2, 3, 4, 5]},
            "top1_max_over_epochs_authors_selected_on_test": {"median": m + 1.0},
        }

    out = {"runs": {"real_only": run(63.1)}}
    if with_synth:
        out["runs"]["real_plus_synthetic"] = run(median)
        out["generative_metrics"] = {"sets": {
            "train_synthetic": {"action2motion": {"accuracy": 90.0, "fid": fid, "diversity": 6.5, "multimodality": 2.25}},
            "train_real": {"action2motion": {"definition": "action2motion", "skipped": "too few clips"}},
        }}
    return out


def test_rows_and_markdown():
    rows = [
        row_from_results("real only", _results(87.2, 87.28, 0.5, fid=1.5), run="real_only"),
        row_from_results("KineMIC", _results(87.2, 87.28, 0.512, fid=1.5)),
    ]
    assert rows[0].top1_median == 63.1 and rows[0].fid is None
    assert rows[1].fid == 1.5 and rows[1].definition == "action2motion" and rows[1].seeds == 5
    md = to_markdown(rows)
    lines = md.splitlines()
    assert lines[0].startswith(
        "| Method | Balanced median (%) | Balanced mean ± std (%) | Top-1 median (%) | Top-1 mean ± std (%) | Converged seeds | Acc. (%) | FID"
    )
    assert "| KineMIC | – | – | 87.20 | 87.28 ± 0.51 | not checked | 90.00 | 1.500 | 6.500 | 2.250 | 88.20 |" in md
    assert "| real only | – | – | 63.10 | 87.28 ± 0.50 | not checked | – | – | – | – | 64.10 |" in md
    assert "definition: action2motion" in md


def test_missing_run_is_an_error():
    with pytest.raises(ValueError, match="no run 'real_plus_synthetic'"):
        row_from_results("MDM zero-shot", _results(80.0, 80.0, 1.0, with_synth=False))


def test_write_results_table_writes_markdown_and_json(tmp_path):
    rows = [MethodRow("MDM+LoRA", 80.7, 80.1, 1.2, 5)]
    md, js = write_results_table(rows, tmp_path / "table1")
    assert md.read_text().count("| MDM+LoRA |") == 1
    data = json.loads(js.read_text())
    assert data["rows"][0]["method"] == "MDM+LoRA" and data["rows"][0]["top1_median"] == 80.7
    assert "top1_median" in data["columns"]


def test_row_spec_parsing():
    assert parse_row_spec("KineMIC=out/k/har_results.json") == ("KineMIC", Path("out/k/har_results.json"), "real_plus_synthetic")
    assert parse_row_spec("real only=out/k/har_results.json:real_only") == ("real only", Path("out/k/har_results.json"), "real_only")
    with pytest.raises(ValueError, match="NAME=PATH"):
        parse_row_spec("KineMIC")


def test_balanced_accuracy_counts_and_convergence_flag():
    # two seeds: confusions [[1, 1], [0, 2]] (recalls 50, 100 -> 75) and [[2, 0], [0, 2]] (100)
    run = {
        "classes": ["a", "b"],
        "top1_final_epoch": {"median": 87.5, "mean": 87.5, "std": 17.68, "values": [75.0, 100.0]},
        "confusion_matrix_per_seed": [[[1, 1], [0, 2]], [[2, 0], [0, 2]]],
        "confusion_matrix": [[3, 1], [0, 4]],
    }
    old = row_from_results("old", {"runs": {"real_only": run}}, run="real_only")
    assert (old.balanced_median, old.balanced_mean) == (87.5, 87.5)
    assert old.test_per_class == {"a": 4, "b": 4} and old.converged_seeds is None
    new = {**run, "balanced_accuracy_final_epoch": {"median": 1.0, "mean": 2.0, "std": 3.0, "values": [1, 2]},
           "test_per_class": {"a": 2, "b": 2}, "converged_seeds": 1}
    row = row_from_results("new", {"runs": {"real_only": new}}, run="real_only")
    assert (row.balanced_median, row.balanced_mean, row.balanced_std) == (1.0, 2.0, 3.0)
    md = to_markdown([row])
    assert "| new | 1.00 | 2.00 ± 3.00 | 87.50 | 87.50 ± 17.68 | 1/2 ⚠ NOT ALL CONVERGED |" in md
    assert "Test clips per class: a 2, b 2." in md


def test_paired_columns_mark_resolved_differences():
    from mdm_kinemic.har.results_table import with_paired

    base = {"seeds": [0, 1], "test_ids": ["p", "q", "r", "s"], "classes": ["a", "b"], "test_labels": [0, 0, 1, 1],
            "top1_final_epoch": {"median": 0, "mean": 0, "std": 0, "values": [0, 0]}}
    runs = [
        {**base, "test_predictions_per_seed": [[1, 1, 0, 0], [1, 1, 0, 0]]},  # all wrong
        {**base, "test_predictions_per_seed": [[0, 0, 1, 1], [0, 0, 1, 1]]},  # all right
        {**base, "test_predictions_per_seed": [[1, 1, 0, 0], [1, 1, 0, 0]]},  # as the reference
    ]
    rows = [row_from_results(n, {"runs": {"real_only": r}}, run="real_only") for n, r in zip(("real only", "good", "same"), runs)]
    rows = with_paired(rows, runs, ["real only"])
    assert rows[0].paired is None
    assert rows[1].paired["real only"]["mean"] == 100.0 and rows[1].paired["real only"]["resolved"]
    assert rows[2].paired["real only"]["ci95"] == [0.0, 0.0]
    md = to_markdown(rows)
    assert "Δ balanced vs real only [95 % CI]" in md.splitlines()[0]
    assert "| +100.00 [+100.00, +100.00] ✓ |" in md and "| +0.00 [+0.00, +0.00] |" in md
    with pytest.raises(ValueError, match="names no row"):
        with_paired(rows, runs, ["MDM + LoRA"])
