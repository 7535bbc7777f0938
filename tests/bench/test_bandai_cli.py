"""The driver: several splits in one run, their summary, the fixed evaluator and paired tables, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from filelock import FileLock

from mdm_kinemic.bench.bandai import main
from mdm_kinemic.bench.folder_lock import BENCH_LOCK
from mdm_kinemic.bench.presets import PRESETS, check_har_iterations, get_preset
from mdm_kinemic.bench.split import SplitSettings, parse_target_contents, split_name
from mdm_kinemic.bench.stages import CEILING, Bench, StageError
from mdm_kinemic.data.humanml3d import write_clip, write_mean_std
from mdm_kinemic.data.labels import write_labels

CONTENTS = {"run": 7, "walk": 6, "dash": 6, "bow": 3}
LABELS = [0, 0, 1, 1]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    ids, labels = [], []
    for c, (content, n) in enumerate(CONTENTS.items()):
        for k in range(n):
            clip_id = f"dataset-1_{content}_normal_{k:03d}"
            write_clip(root, clip_id, np.full((6, 263), c + k, np.float32), np.zeros((6, 22, 3)), [f"a person {content}s."])
            ids.append(clip_id)
            labels.append(c)
    write_labels(root, ids, labels, list(CONTENTS))
    write_mean_std(root, np.zeros(263), np.ones(263))
    return root


def _run(predictions: list[list[int]]) -> dict:
    """A har_results.json run: two seeds, four test clips (two per class)."""
    conf = []
    for p in predictions:
        c = np.zeros((2, 2), int)
        np.add.at(c, (LABELS, p), 1)
        conf.append(c.tolist())
    top1 = [100 * float(np.mean(np.array(p) == LABELS)) for p in predictions]
    return {
        "seeds": [0, 1], "classes": ["a", "b"], "test_ids": ["w", "x", "y", "z"], "test_labels": LABELS,
        "test_predictions_per_seed": predictions, "confusion_matrix_per_seed": conf, "converged_per_seed": [True, True],
        "converged_seeds": 2, "top1_final_epoch": {"median": float(np.median(top1)), "mean": float(np.mean(top1)), "std": 0.0, "values": top1},
    }


def _fake_har(bench: Bench, evaluator_balanced: float) -> None:
    """har results of real only, MDM + LoRA, Full and the ceiling, and the evaluator's JSON."""
    for name, preds in (("mdm_lora", [[0, 1, 1, 1], [0, 1, 1, 1]]), ("full", [[0, 0, 1, 1], [0, 0, 1, 1]])):
        bench.har_dir(name).mkdir(parents=True)
        (bench.har_dir(name) / "har_results.json").write_text(json.dumps({"runs": {"real_plus_synthetic": _run(preds)}}))
    for name, preds in (("real_only", [[1, 1, 0, 0], [0, 1, 1, 1]]), (CEILING, [[0, 0, 1, 1]] * 2)):
        bench.har_dir(name).mkdir(parents=True)
        (bench.har_dir(name) / "har_results.json").write_text(json.dumps({"runs": {"real_only": _run(preds)}}))
    bench.evaluator_stem.parent.mkdir(parents=True)
    bench.evaluator_stem.with_suffix(".json").write_text(json.dumps({"test_balanced_accuracy": evaluator_balanced}))
    bench.evaluator_stem.with_suffix(".safetensors").touch()


def test_named_lists_and_split_names():
    assert parse_target_contents("default") == ("wave-both-hands", "raise-up-both-hands", "run")
    assert parse_target_contents("mirrored") == ("wave-right-hand", "raise-up-right-hand", "walk-turn-right")
    assert parse_target_contents("run, walk") == ("run", "walk")
    assert split_name(("run", "walk")) == "run+walk" and split_name(parse_target_contents("mirrored")) == "mirrored"


def test_two_splits_run_in_their_own_folders_and_summarise_with_their_mean(corpus, tmp_path):
    out = tmp_path / "out"
    argv = ["--bandai_root", str(corpus), "--out", str(out), "--target_contents", "run,walk", "walk,dash", "--shots", "2"]
    assert main(argv) == 0
    for name in ("run+walk", "walk+dash"):
        assert json.loads((out / name / "split.json").read_text())["settings"]["target_contents"] == name.split("+")
    preset = PRESETS["cpu"]
    for name, ev in (("run+walk", 80.0), ("walk+dash", 90.0)):
        _fake_har(Bench(corpus, out / name, SplitSettings(tuple(name.split("+")), 2), preset), ev)
    assert main([*argv, "--only", "table"]) == 0
    summary = json.loads((out / "results" / "summary.json").read_text())
    assert set(summary["splits"]) == {"run+walk", "walk+dash"}
    split = summary["splits"]["run+walk"]
    assert split["evaluator_balanced_accuracy"] == 80.0
    assert set(split["methods"]) == {"real_only", "mdm_lora", "full", CEILING}
    # full: balanced 100 on both seeds; real only 0 and 75; MDM + LoRA 75 and 75
    full = split["methods"]["full"]
    assert full["balanced_median"] == 100.0 and full["converged_seeds"] == [0, 1]
    assert full["paired_vs_real_only"]["mean"] == 62.5 and full["paired_vs_mdm_lora"]["mean"] == 25.0
    assert "paired_vs_real_only" not in split["methods"]["real_only"]
    mean = summary["mean_over_splits"]
    assert mean["evaluator_balanced_accuracy"] == 85.0 and mean["methods"]["full"]["balanced_median"] == 100.0
    # both splits hold the same runs: the pooled difference is theirs, with an interval
    assert mean["methods"]["full"]["paired_vs_mdm_lora"]["mean"] == 25.0
    assert mean["methods"]["full"]["paired_vs_mdm_lora"]["ci95"][0] <= 25.0 <= mean["methods"]["full"]["paired_vs_mdm_lora"]["ci95"][1]
    table = (out / "run+walk" / "results" / "table1.md").read_text()
    assert "Δ balanced vs MDM + LoRA [95 % CI]" in table and "Δ balanced vs real only [95 % CI]" in table


def test_har_stage_trains_the_fixed_evaluator_and_reuses_it(corpus, tmp_path, monkeypatch):
    bench = Bench(corpus, tmp_path / "out", SplitSettings(("run", "walk"), 2), get_preset("cpu", har_seeds=3), jobs=4)
    calls: dict[str, list[str]] = {}
    monkeypatch.setattr(bench, "_run",
                        lambda name, module, args, env=None: calls.setdefault(name, [module, *map(str, args)]) and True)
    monkeypatch.setattr(bench, "synth_done", lambda name: True)
    # the evaluator's command is faked and leaves no files: no method is evaluated without them
    with pytest.raises(StageError, match="har-real_only: no fixed evaluator"):
        bench.stage_har()
    assert calls["har-evaluator"][0] == "mdm_kinemic.har.evaluator"
    ev = calls["har-evaluator"]
    assert ev[ev.index("--train_split") + 1] == "evaluator" and ev[ev.index("--min_iterations") + 1] == "200"
    assert not any(name.startswith("har-full") for name in calls)
    bench.evaluator_stem.parent.mkdir(parents=True)
    bench.evaluator_stem.with_suffix(".json").write_text("{}")
    bench.evaluator_stem.with_suffix(".safetensors").touch()
    calls.clear()
    bench.stage_har()
    full = calls["har-full"]
    assert full[full.index("--recogniser_ckpt") + 1] == str(bench.evaluator_stem.with_suffix(".safetensors"))
    assert "--recogniser_train" not in full and "--no-real_only" in full and full[full.index("--lr") + 1] == "0.02"
    real = calls["har-real_only"]  # the baseline, once: every set's evaluation leaves it out
    assert "--no-real_only" not in real and "--train_synthetic" not in real and real[real.index("--train_real_split") + 1] == "train"
    assert real[real.index("--recogniser_ckpt") + 1] == str(bench.evaluator_stem.with_suffix(".safetensors"))
    # CPU, 4 jobs: the ceiling, real only and the 6 sets run 4 at a time, one seed at a time each
    assert (full[full.index("--jobs") + 1], full[full.index("--seeds") + 1], full[full.index("--min_iterations") + 1]) == ("1", "3", "200")


def test_protocol_that_cannot_converge_is_refused(corpus, tmp_path, capsys):
    with pytest.raises(ValueError, match="only 1 SGD iterations.*--har_min_iterations 100"):
        check_har_iterations(get_preset("cpu", har_epochs=1, har_min_iterations=0), 30)
    # the cpu preset: 30 real clips reach 200 iterations
    assert check_har_iterations(PRESETS["cpu"], 30) == 200
    with pytest.raises(SystemExit) as exit_info:
        main(["--bandai_root", str(corpus), "--out", str(tmp_path / "o"), "--target_contents", "run,walk",
              "--har_epochs", "1", "--har_min_iterations", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "too few to converge: pass --har_min_iterations" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_split_folder_another_run_writes_is_refused_before_any_stage(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    with FileLock(out / "walk+dash" / BENCH_LOCK):  # another benchmark run writes the second split
        argv = ["--bandai_root", str(corpus), "--out", str(out), "--target_contents", "run,walk", "walk,dash", "--shots", "2"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{out / 'walk+dash'} is being written by another python -m mdm_kinemic.bench.bandai" in err and "Traceback" not in err
        assert not list(out.rglob("split.json"))
    assert main(argv) == 0 and (out / "run+walk" / "split.json").is_file()


@pytest.mark.parametrize(
    ("lists", "match"),
    [
        (["run,walk", "run,swim"], "swim not among the contents"),
        (["run,bow"], r"'bow': 3.*--shots 2 \+ 4"),
    ],
)
def test_bad_split_lists_exit_2_before_any_stage(corpus, tmp_path, capsys, lists, match):
    out = tmp_path / "o"
    assert main(["--bandai_root", str(corpus), "--out", str(out), "--target_contents", *lists, "--shots", "2"]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "Traceback" not in err
    assert not list(out.rglob("split.json"))


@pytest.mark.parametrize(("device", "teacher_flag"), [("cpu", ["--device", "-1"]), ("1", ["--device", "1"]),
                                                     ("cuda:2", ["--device", "2"]), ("auto", [])])
def test_teacher_gets_upstream_integer_device_and_synth_keeps_seed_0(corpus, tmp_path, monkeypatch, device, teacher_flag):
    bench = Bench(corpus, tmp_path / "out", SplitSettings(("run", "walk"), 2), get_preset("cpu", device=device))
    calls: dict[str, list[str]] = {}
    monkeypatch.setattr(bench, "_run", lambda name, module, args, env=None: calls.setdefault(name, [module, *map(str, args)]) and False)
    bench.stage_teacher()
    teacher = calls["teacher"]
    given = teacher[teacher.index("--device"):teacher.index("--device") + 2] if "--device" in teacher else []
    assert given == teacher_flag
    # synth took upstream generate.py's seed (10); the benchmark keeps the seed its runs recorded
    monkeypatch.setattr(bench, "synth_done", lambda name: False)
    monkeypatch.setattr("mdm_kinemic.bench.stages.latest_step", lambda folder: (10**6, folder / "model001000000.pt"))
    bench.stage_synth()
    synth = calls["synth-zero_shot"]
    assert synth[synth.index("--seed") + 1] == "0"
