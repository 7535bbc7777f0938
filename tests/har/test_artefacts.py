"""What every har.evaluate run leaves: recognisers, test scores, per-epoch logs; PYSKL input; scoring without training."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mdm_kinemic.har.artefacts import read_scores
from mdm_kinemic.har.evaluate import evaluate_run
from mdm_kinemic.har.evaluate import main as evaluate_main
from mdm_kinemic.har.evaluator import load_recogniser
from mdm_kinemic.har.export_pyskl import main as export_main
from mdm_kinemic.har.protocol import HarProtocol
from mdm_kinemic.har.score import main as score_main
from mdm_kinemic.har.train import cosine_lr

PROTOCOL = HarProtocol(seeds=2, epochs=2, batch_size=4, clip_len=10, base_channels=8)
TINY_FLAGS = ["--quick", "--epochs", "1", "--clip_len", "10", "--base_channels", "8", "--gen_metrics", "none"]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_seed_leaves_recogniser_scores_and_log_the_same_with_parallel_seeds(make_clips, tmp_path):
    real, test = make_clips(2, 12, seed=0, source="real"), make_clips(2, 12, seed=2, source="test")
    outs = {jobs: tmp_path / f"jobs{jobs}" for jobs in (1, 2)}
    results = {jobs: evaluate_run("real_only", real, test, PROTOCOL, torch.device("cpu"), out, jobs)[0] for jobs, out in outs.items()}
    run = outs[1] / "real_only"
    assert results[1]["recognisers"] == ["real_only/seed0/recogniser", "real_only/seed1/recogniser"]
    clips = json.loads((run / "test_clips.json").read_text())
    assert clips["ids"] == list(test.ids) and clips["class_names"] == list(test.class_names)
    for k, seed in enumerate((0, 1)):
        scores, ids, names = read_scores(run, seed)
        assert scores.dtype == np.float32 and scores.shape == (6, 3) and ids == list(test.ids)
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(scores.argmax(axis=1), results[1]["test_predictions_per_seed"][k])
        settings = json.loads((run / f"seed{seed}" / "recogniser.json").read_text())
        assert settings["seed"] == seed and settings["run"] == "real_only"
        assert settings["test_balanced_accuracy"] == results[1]["balanced_accuracy_final_epoch"]["values"][k]
        log = _lines(run / f"seed{seed}" / "train_log.jsonl")
        # 6 clips in batches of 4: 2 iterations per epoch, 4 in all; lr of iterations 1 and 3
        assert [(r["epoch"], r["iterations"]) for r in log] == [(1, 2), (2, 4)]
        assert [r["lr"] for r in log] == pytest.approx([cosine_lr(0.1, 1, 4), cosine_lr(0.1, 3, 4)])
        assert list((run / f"seed{seed}").glob("events.out.tfevents.*"))
        # the parallel run leaves the same artefacts
        other = outs[2] / "real_only" / f"seed{seed}"
        np.testing.assert_array_equal(read_scores(outs[2] / "real_only", seed)[0], scores)
        assert _lines(other / "train_log.jsonl") == log
        a, b = load_file(run / f"seed{seed}" / "recogniser.safetensors"), load_file(other / "recogniser.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_tensorboard_events_hold_the_logged_loss_and_lr(make_clips, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    real, test = make_clips(2, 12, seed=0, source="real"), make_clips(1, 12, seed=2, source="test")
    for _ in range(2):  # a rerun into the same folder replaces the log, not adds a second curve
        evaluate_run("real_only", real, test, HarProtocol(seeds=1, epochs=2, batch_size=4, clip_len=10, base_channels=8),
                     torch.device("cpu"), tmp_path)
    folder = tmp_path / "real_only" / "seed0"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1 and len(_lines(folder / "train_log.jsonl")) == 2
    events = EventAccumulator(str(folder))
    events.Reload()
    log = _lines(folder / "train_log.jsonl")
    for tag, key in (("train/loss", "loss"), ("train/lr", "lr")):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in log], rel=1e-6)


def test_saved_seed_recogniser_scores_a_test_set_without_training(make_clips, write_folder, tmp_path, capsys):
    real, test = make_clips(2, 12, seed=0, source="real"), make_clips(2, 12, seed=2, source="test")
    evaluate_run("real_only", real, test, PROTOCOL, torch.device("cpu"), tmp_path / "har")
    seed1 = tmp_path / "har" / "real_only" / "seed1"
    recogniser = load_recogniser(seed1 / "recogniser")
    np.testing.assert_array_equal(recogniser.embed(test)[0], np.load(seed1 / "test_scores.npy"))
    test_dir = write_folder(tmp_path / "test", test)
    out = tmp_path / "scored"
    assert score_main(["--recogniser", str(seed1 / "recogniser.safetensors"), "--test", str(test_dir), "--out", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out / "test_scores.npy"), np.load(seed1 / "test_scores.npy"))
    result = json.loads((out / "score.json").read_text())
    saved = json.loads((seed1 / "recogniser.json").read_text())
    assert result["balanced_accuracy"] == saved["test_balanced_accuracy"] and result["top1"] == saved["test_top1"]
    with pytest.raises(SystemExit) as exit_:
        score_main(["--recogniser", str(tmp_path / "none"), "--test", str(test_dir), "--out", str(out)])
    assert exit_.value.code == 2 and "not found" in capsys.readouterr().err


def test_cli_trains_on_a_pyskl_pickle_and_shows_progress(make_clips, write_folder, tmp_path, capsys):
    train = write_folder(tmp_path / "train", make_clips(2, 12, seed=0, source="train"))
    test = write_folder(tmp_path / "test", make_clips(1, 12, seed=1, source="test"))
    pkl = tmp_path / "set.pkl"
    export_main(["--train", str(train), "--test", str(test), "--out", str(pkl)])
    capsys.readouterr()
    out = tmp_path / "har"
    results = evaluate_main(["--train_real", f"{pkl}:xsub_train", "--test", str(pkl), "--test_split", "xsub_val",
                             *TINY_FLAGS, "--out", str(out)])
    assert results["data"]["train_real"] == {"source": f"{pkl}:xsub_train", "clips": 6, "joints": 22}
    assert results["data"]["test"]["source"] == f"{pkl}:xsub_val"
    assert "real_only seed 1" in capsys.readouterr().err  # the bar over seeds and epochs
    assert sorted(p.name for p in (out / "real_only").iterdir()) == ["seed0", "seed1", "test_clips.json"]
    evaluate_main(["--train_real", f"{pkl}:xsub_train", "--test", f"{pkl}:xsub_val", *TINY_FLAGS, "--no-progress",
                   "--out", str(tmp_path / "quiet")])
    assert "real_only seed" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(["--train_real", str(pkl), "--test", f"{pkl}:xsub_val", *TINY_FLAGS, "--out", str(out)])
    assert exit_.value.code == 2 and "--train_real" in capsys.readouterr().err


def test_cli_trains_two_body_ntu_clips_deterministically(tmp_path):
    rng = np.random.default_rng(0)
    annotations, split = [], {"xsub_train": [], "xsub_val": []}
    for i in range(8):
        name = f"S001C001P00{i % 4}R001A{'001' if i % 2 else '050'}"
        split["xsub_train" if i < 6 else "xsub_val"].append(name)
        annotations.append({"frame_dir": name, "label": 0 if i % 2 else 49,
                            "keypoint": rng.normal(size=(1 + i % 2, 10 + i, 25, 3)).astype(np.float32), "total_frames": 10 + i})
    pkl = tmp_path / "ntu.pkl"
    pkl.write_bytes(pickle.dumps({"split": split, "annotations": annotations}))
    (tmp_path / "ntu.json").write_text(json.dumps({"class_names": [f"A{n:03d}" for n in range(1, 121)]}))
    runs = []
    for out in ("a", "b"):
        args = ["--train_real", f"{pkl}:xsub_train", "--test", f"{pkl}:xsub_val", *TINY_FLAGS, "--persons", "2",
                "--deterministic", "--no-progress", "--out", str(tmp_path / out)]
        runs.append(evaluate_main(args))
    assert runs[0]["deterministic"] and runs[0]["protocol"]["persons"] == 2
    assert runs[0]["runs"]["real_only"]["classes"] == ["A001", "A050"]
    np.testing.assert_array_equal(read_scores(tmp_path / "a" / "real_only", 0)[0], read_scores(tmp_path / "b" / "real_only", 0)[0])
    assert not torch.are_deterministic_algorithms_enabled()  # the previous setting is back
