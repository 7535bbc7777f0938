"""The evaluation run on generated clips: final-epoch accuracy, seed summary, outputs, bad input."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.evaluate import (
    MAX_OVER_EPOCHS_KEY,
    format_summary,
    run_har_evaluation,
)
from mdm_kinemic.har.protocol import HarProtocol

TINY = HarProtocol(seeds=3, epochs=2, batch_size=4, clip_len=10, base_channels=8, track_max_over_epochs=True)


@pytest.fixture
def sets(make_clips):
    return make_clips(2, 12, seed=0, source="real"), make_clips(3, 14, seed=1, source="synth"), make_clips(2, 12, seed=2, source="test")


def test_full_run_summarises_final_epoch_accuracy_over_seeds(sets, tmp_path):
    real, synth, test = sets
    results = run_har_evaluation(real, test, TINY, train_synthetic=synth, device="cpu", out_dir=tmp_path, gen_metrics="both")
    assert json.loads((tmp_path / "har_results.json").read_text())["runs"].keys() == {"real_only", "real_plus_synthetic"}
    for name, n_train in (("real_only", 6), ("real_plus_synthetic", 15)):
        run = results["runs"][name]
        values = run["top1_final_epoch"]["values"]
        assert len(values) == 3 and run["train_clips"] == n_train
        assert run["top1_final_epoch"]["median"] == pytest.approx(statistics.median(values))
        assert run["top1_final_epoch"]["mean"] == pytest.approx(statistics.mean(values))
        assert run["top1_final_epoch"]["std"] == pytest.approx(statistics.stdev(values))
        # accuracy is the final epoch's, never the best epoch's
        assert values == [epochs[-1] for epochs in run["epoch_test_top1_per_seed"]]
        assert run[MAX_OVER_EPOCHS_KEY]["values"] == [max(epochs) for epochs in run["epoch_test_top1_per_seed"]]
        confusion = np.array(run["confusion_matrix"])
        assert confusion.sum() == 3 * len(test)
        per_class = np.diag(confusion) / confusion.sum(axis=1) * 100
        assert list(run["per_class_accuracy"].values()) == pytest.approx(per_class.tolist())
        assert (tmp_path / run["confusion_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gen = results["generative_metrics"]
    assert set(gen["definitions"]) == {"action2motion", "text2motion"}
    a2m = gen["sets"]["train_synthetic"]["action2motion"]
    assert a2m["definition"] == "action2motion" and a2m["fid"] >= 0 and 0 <= a2m["accuracy"] <= 100
    assert "fid" not in gen["sets"]["test_reference"]["action2motion"]
    assert "text-to-motion" in gen["sets"]["train_synthetic"]["text2motion"]["skipped"]  # 9 clips: too few
    text = format_summary(results)
    assert "real_plus_synthetic" in text and "skipped" in text


def test_real_only_run_without_metrics(sets):
    real, _, test = sets
    results = run_har_evaluation(real, test, HarProtocol.quick(seeds=1, epochs=1, clip_len=10, base_channels=8), gen_metrics="none")
    assert list(results["runs"]) == ["real_only"] and "generative_metrics" not in results
    assert results["runs"]["real_only"][MAX_OVER_EPOCHS_KEY] is None


def test_without_the_baseline_the_synthetic_run_equals_the_full_evaluations(sets):
    real, synth, test = sets
    protocol = HarProtocol(seeds=2, epochs=1, batch_size=4, clip_len=10, base_channels=8)
    full = run_har_evaluation(real, test, protocol, train_synthetic=synth, gen_metrics="none")
    alone = run_har_evaluation(real, test, protocol, train_synthetic=synth, gen_metrics="none", real_only=False)
    assert list(alone["runs"]) == ["real_plus_synthetic"]
    np.testing.assert_array_equal(np.array(alone["runs"]["real_plus_synthetic"]["test_predictions_per_seed"]),
                                  np.array(full["runs"]["real_plus_synthetic"]["test_predictions_per_seed"]))
    with pytest.raises(ValueError, match="give --train_synthetic"):
        run_har_evaluation(real, test, protocol, gen_metrics="none", real_only=False)
    with pytest.raises(ValueError, match="--recogniser_ckpt or --recogniser_train"):
        run_har_evaluation(real, test, protocol, train_synthetic=synth, real_only=False)


def _relabelled(clips, names):
    return SkeletonClips(clips.joints, clips.labels, names, clips.ids, clips.source)


def test_bad_inputs_fail_before_training(sets):
    real, synth, test = sets
    empty = SkeletonClips([], np.zeros(0, np.int64), real.class_names, [], "out/synth_empty")
    with pytest.raises(ValueError, match="out/synth_empty: the synthetic set is empty.*omit --train_synthetic"):
        run_har_evaluation(real, test, TINY, train_synthetic=empty)
    other = _relabelled(test, ("stand", "bounce", "jump"))
    with pytest.raises(ValueError, match=r"test classes \['jump'\]"):
        run_har_evaluation(real, other, TINY, train_synthetic=synth)
    short = SkeletonClips([j[:5] for j in synth.joints], synth.labels, synth.class_names, synth.ids, "out/short")
    with pytest.raises(ValueError, match="out/short.*temporal kernel of 9 frames"):
        run_har_evaluation(real, test, TINY, train_synthetic=short)
    ntu = SkeletonClips([np.zeros((12, 25, 3), np.float32)] * 3, np.array([0, 1, 2]), synth.class_names, ["a", "b", "c"], "out/ntu")
    with pytest.raises(ValueError, match="mismatched joint counts"):
        run_har_evaluation(real, test, TINY, train_synthetic=ntu)
    with pytest.raises(ValueError, match="gen_metrics"):
        run_har_evaluation(real, test, TINY, gen_metrics="fid_only")


def test_runs_record_balanced_accuracy_convergence_iterations_and_predictions(sets):
    real, _, test = sets
    protocol = HarProtocol(seeds=2, epochs=1, batch_size=4, clip_len=10, base_channels=8, min_iterations=3)
    run = run_har_evaluation(real, test, protocol, gen_metrics="none")["runs"]["real_only"]
    assert run["test_per_class"] == {"stand": 2, "bounce": 2, "sway": 2}
    assert run["iterations_per_seed"] == [4, 4] and run["epochs_per_seed"] == [2, 2]
    assert len(run["converged_per_seed"]) == 2 and run["converged_seeds"] == sum(run["converged_per_seed"])
    labels = np.array(run["test_labels"])
    for k, predictions in enumerate(run["test_predictions_per_seed"]):
        predictions = np.array(predictions)
        recalls = [np.mean(predictions[labels == c] == c) * 100 for c in range(3)]
        assert run["balanced_accuracy_final_epoch"]["values"][k] == pytest.approx(np.mean(recalls))
        assert run["top1_final_epoch"]["values"][k] == pytest.approx(100 * np.mean(predictions == labels))
        assert run["converged_per_seed"][k] == bool(min(run["train_recall_per_seed"][k]) >= 5.0)
    assert "balanced median" in format_summary({"runs": {"real_only": run}})


@pytest.mark.parametrize("fid", [-0.0, -1e-12])
def test_a_rounding_negative_fid_prints_as_zero(fid):
    stats = {"median": 50.0, "mean": 50.0, "std": 0.0}
    run = {"top1_final_epoch": stats, "balanced_accuracy_final_epoch": stats, MAX_OVER_EPOCHS_KEY: None,
           "converged_seeds": 1, "seeds": [0], "test_per_class": {"stand": 2}}
    metrics = {"accuracy": 100.0, "fid": fid, "diversity": 1.0, "multimodality": 0.5}
    text = format_summary({"runs": {"real_only": run}, "generative_metrics": {
        "recogniser": "ST-GCN", "sets": {"train_real": {"action2motion": metrics}}}})
    assert "FID 0.000" in text and "-0.000" not in text


def test_parallel_seeds_give_the_sequential_results(sets):
    from mdm_kinemic.har.evaluate import evaluate_run

    real, _, test = sets
    protocol = HarProtocol(seeds=2, epochs=1, batch_size=4, clip_len=10, base_channels=8)
    sequential, _ = evaluate_run("a", real, test, protocol, torch.device("cpu"), jobs=1)
    parallel, models = evaluate_run("a", real, test, protocol, torch.device("cpu"), jobs=2)
    for key in ("test_predictions_per_seed", "confusion_matrix_per_seed", "train_recall_per_seed", "iterations_per_seed"):
        for a, b in zip(sequential[key], parallel[key]):
            np.testing.assert_array_equal(a, b)
    assert sequential["balanced_accuracy_final_epoch"] == parallel["balanced_accuracy_final_epoch"]
    assert [m.seed for m in models] == [0, 1]
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        evaluate_run("a", real, test, protocol, torch.device("cpu"), jobs=0)


def test_a_gpu_asked_for_on_a_machine_without_one_names_the_fix(sets, tmp_path, monkeypatch):
    real, _, test = sets
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available on this machine; use --device cpu \\(or -1\\)"):
        run_har_evaluation(real, test, TINY, device="cuda", out_dir=tmp_path)
    assert not (tmp_path / "har_results.json").exists()
