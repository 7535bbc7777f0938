"""The calibration study: its plan, its commands (validation only), its paired summary, bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from filelock import FileLock

from mdm_kinemic.bench.calibrate import (
    BASELINE,
    PAIRED_AT_LEVEL,
    PAIRED_VS_BASELINE,
    STUDY_DIR,
    build_parser,
    factors,
    Study,
    load_bench,
    main,
    merge_seeds,
    plan,
    study_markdown,
    study_summary,
    teacher_checkpoint,
)
from mdm_kinemic.bench.folder_lock import BENCH_LOCK, STUDY_LOCK
from mdm_kinemic.bench.presets import PRESETS, get_preset
from mdm_kinemic.bench.stages import StageError
from mdm_kinemic.bench.summary import MDM_LORA

LABELS = [0, 0, 1, 1]


def _run(predictions: list[list[int]], seeds=(0, 1)) -> dict:
    """A real_plus_synthetic run of har_results.json: four validation clips, two per class."""
    balanced = []
    for p in predictions:
        hits = np.array(p) == LABELS
        balanced.append(100 * float((hits[:2].mean() + hits[2:].mean()) / 2))
    top1 = [100 * float(np.mean(np.array(p) == LABELS)) for p in predictions]
    return {"classes": ["a", "b"], "test_ids": ["w", "x", "y", "z"], "test_labels": LABELS, "seeds": list(seeds),
            "test_predictions_per_seed": predictions, "converged_per_seed": [True] * len(predictions),
            "balanced_accuracy_final_epoch": {"values": balanced, "median": float(np.median(balanced)),
                                              "mean": float(np.mean(balanced)), "std": float(np.std(balanced, ddof=1))},
            "top1_final_epoch": {"values": top1, "median": float(np.median(top1))}}


def test_plan_puts_the_reference_and_baseline_first_and_refuses_unknown_factors():
    configs = plan(PRESETS["cpu"], ["eq5_scale", "teacher_strength"])
    assert [c.name for c in configs] == [MDM_LORA, BASELINE, "eq5_scale=element", "eq5_scale=authors_broadcast",
                                         "teacher_strength=half_steps"]
    assert configs[2].level.fewshot_args == ("--distillation_normalisation", "element") and configs[2].preset == "full"
    schedule = {c.name: c for c in plan(PRESETS["cpu"], ["fewshot_schedule"])}
    assert list(schedule) == [MDM_LORA, BASELINE, "fewshot_schedule=300x0.0003", "mdm_lora@fewshot_schedule=300x0.0003",
                              "fewshot_schedule=150x0.00015"]
    longer = schedule["mdm_lora@fewshot_schedule=300x0.0003"]
    assert longer.preset == MDM_LORA and longer.level.fewshot_args == ("--num_steps", "300") and not longer.reuses_fewshot
    with pytest.raises(ValueError, match="unknown factor.*'warp'.*choose from eq5_scale"):
        plan(PRESETS["cpu"], ["warp"])
    with pytest.raises(ValueError, match=r"\['dww'\] named more than once"):
        plan(PRESETS["cpu"], ["dww", "guidance", "dww"])
    # --factors without a name: the two methods only (a split whose source changed, e.g. --mirror_source)
    chosen = build_parser().parse_args(["--bench", "OUT", "--factors"]).factors
    assert chosen == [] and [c.name for c in plan(PRESETS["cpu"], chosen)] == [MDM_LORA, BASELINE]


def test_the_synthetic_share_runs_both_methods_and_pairs_them_at_the_same_level():
    configs = {c.name: c for c in plan(PRESETS["cpu"], ["synthetic_share"])}
    assert list(configs) == [MDM_LORA, BASELINE, "synthetic_share=32", "mdm_lora@synthetic_share=32",
                             "synthetic_share=16", "mdm_lora@synthetic_share=16"]  # cpu preset: 64 per class
    assert configs["mdm_lora@synthetic_share=16"].preset == MDM_LORA and configs["synthetic_share=16"].level.per_class == 16
    assert all(c.reuses_fewshot for name, c in configs.items() if "=" in name)
    good, half = [[0, 0, 1, 1]] * 2, [[1, 1, 1, 1]] * 2
    runs = {MDM_LORA: [_run(good)] * 2, BASELINE: [_run(half)] * 2,
            "synthetic_share=32": [_run(good)] * 2, "mdm_lora@synthetic_share=32": [_run(half)] * 2}
    summary = study_summary(list(configs.values()), runs, {}, real_only=None)
    share = summary["configs"]["synthetic_share=32"]
    # vs MDM + LoRA at the preset's share: a tie; vs MDM + LoRA at its own share: +50 points
    assert share["paired_vs_mdm_lora"]["mean"] == 0.0 and share[PAIRED_AT_LEVEL]["mean"] == 50.0
    assert PAIRED_AT_LEVEL not in summary["configs"]["mdm_lora@synthetic_share=32"]
    # MDM + LoRA's own levels never win the factor for KineMIC
    assert summary["best_per_factor"] == {"synthetic_share": "synthetic_share=32"}
    assert "synthetic_share=32: +50.00 [+50.00, +50.00] ✓" in study_markdown(summary)


def test_teacher_strength_takes_the_checkpoint_at_half_its_steps(tmp_path):
    with pytest.raises(FileNotFoundError, match="no teacher checkpoint"):
        teacher_checkpoint(tmp_path, 0.5)
    for step in (0, 300, 600, 900, 1200, 1242):
        (tmp_path / f"model{step:09d}.pt").touch()
    assert teacher_checkpoint(tmp_path, 1.0).name == "model000001242.pt"
    assert teacher_checkpoint(tmp_path, 0.5).name == "model000000600.pt"  # 600 <= 621 < 900


def test_seeds_merge_side_by_side_and_pair_with_the_reference():
    merged = merge_seeds([_run([[0, 0, 1, 1], [0, 1, 1, 1]]), _run([[1, 1, 1, 1], [0, 0, 1, 1]])])
    assert merged["seeds"] == ["0:0", "0:1", "1:0", "1:1"] and merged["seed_groups"] == [0, 0, 1, 1]
    assert merged["balanced_accuracy_final_epoch"]["values"] == [100.0, 75.0, 50.0, 100.0]
    assert merged["balanced_accuracy_final_epoch"]["median"] == 87.5
    with pytest.raises(ValueError, match="differ in test_ids"):
        merge_seeds([_run([[0, 0, 1, 1]] * 2), {**_run([[0, 0, 1, 1]] * 2), "test_ids": ["a", "b", "c", "d"]}])


def test_runs_without_convergence_flags_merge_as_not_checked():
    unflagged = {k: v for k, v in _run([[0, 0, 1, 1]] * 2).items() if k != "converged_per_seed"}
    assert merge_seeds([_run([[0, 0, 1, 1]] * 2), unflagged])["converged_per_seed"] is None
    configs = plan(PRESETS["cpu"], [])
    summary = study_summary(configs, {MDM_LORA: [unflagged] * 2, BASELINE: [_run([[0, 0, 1, 1]] * 2)] * 2}, {}, None)
    assert summary["configs"][MDM_LORA]["converged_seeds"] is None
    assert "| not checked |" in study_markdown(summary) and "| 4/4 |" in study_markdown(summary)


def test_summary_pairs_each_configuration_and_picks_the_best_level():
    configs = plan(PRESETS["cpu"], ["eq5_scale"])
    good, half = [[0, 0, 1, 1]] * 2, [[1, 1, 1, 1]] * 2
    runs = {MDM_LORA: [_run(half)] * 2, BASELINE: [_run(good)] * 2, "eq5_scale=element": [_run([[0, 1, 1, 1], good[0]]), _run(good)],
            "eq5_scale=authors_broadcast": [_run(half)] * 2}
    summary = study_summary(configs, runs, {BASELINE: [1.0, 3.0]}, real_only=_run(half))
    full = summary["configs"][BASELINE]
    assert full["balanced_median"] == 100.0 and full["paired_vs_mdm_lora"]["mean"] == 50.0
    assert full["paired_vs_mdm_lora"]["resolved"] and full["paired_vs_real_only"]["mean"] == 50.0
    assert full["fid_mean"] == 2.0 and summary["configs"]["eq5_scale=element"]["fid_mean"] is None
    # every run's figure, keyed few-shot seed : recogniser seed (one misread clip of two: 75 %)
    assert summary["configs"]["eq5_scale=element"]["balanced_per_run"] == {"0:0": 75.0, "0:1": 100.0,
                                                                           "1:0": 100.0, "1:1": 100.0}
    assert summary["configs"]["real_only"]["balanced_median"] == 50.0
    assert summary["best_per_factor"] == {"eq5_scale": BASELINE}  # a tie keeps the baseline
    # each level against the baseline, paired: element misreads one clip of two in one run of four
    assert summary["configs"]["eq5_scale=element"][PAIRED_VS_BASELINE]["mean"] == -25.0 / 4
    broadcast = summary["configs"]["eq5_scale=authors_broadcast"][PAIRED_VS_BASELINE]
    assert broadcast == {"mean": -50.0, "ci95": [-50.0, -50.0], "resolved": True}
    assert PAIRED_VS_BASELINE not in summary["configs"][BASELINE] and PAIRED_VS_BASELINE not in summary["configs"][MDM_LORA]
    assert "| -50.00 [-50.00, -50.00] ✓ |" in study_markdown(summary)
    assert "| eq5_scale=authors_broadcast | 50.00 |" in study_markdown(summary)
    two_methods = study_summary(plan(PRESETS["cpu"], []), {n: runs[n] for n in (MDM_LORA, BASELINE)}, {}, real_only=None)
    assert two_methods["best_per_factor"] == {} and "Best level per factor" not in study_markdown(two_methods)
    partial = study_summary(configs, {BASELINE: [_run(good)] * 2}, {}, real_only=None)
    assert list(partial["configs"]) == [BASELINE] and partial["configs"][BASELINE]["paired_vs_mdm_lora"] is None


def test_the_split_is_loaded_at_the_sizes_it_ran_with(bench):
    bench.preset = get_preset("tiny", per_class=7)
    bench.run("split")
    assert load_bench(bench.out, PRESETS["cpu"], jobs=1, devices=(), nice=0, keep_going=False).preset.per_class == 7
    fewer = load_bench(bench.out, PRESETS["cpu"], jobs=1, devices=(), nice=0, keep_going=False, har_seeds=2).preset
    assert (fewer.har_seeds, fewer.per_class) == (2, 7)  # only the seed count is replaced
    (bench.out / "status.json").write_text("{}")  # written before the driver recorded its sizes
    assert load_bench(bench.out, PRESETS["cpu"], jobs=1, devices=(), nice=0, keep_going=False).preset == PRESETS["cpu"]


def test_commands_read_validation_only_and_carry_each_level(bench, monkeypatch):
    bench.run("split")
    loaded = load_bench(bench.out, PRESETS["tiny"], jobs=1, devices=(), nice=0, keep_going=True)
    for step in (0, 2, 4):
        loaded.teacher_dir.mkdir(parents=True, exist_ok=True)
        (loaded.teacher_dir / f"model{step:09d}.pt").touch()
    study = Study(loaded, plan(loaded.preset, ["guidance", "teacher_strength", "synthetic_share"]), seeds=2)
    assert loaded.seconds_file == "calibration/stage_seconds.json"  # not the benchmark's own record
    calls: dict[str, list[str]] = {}
    monkeypatch.setattr(loaded, "_run", lambda name, module, args, env=None: calls.setdefault(name, [module, *map(str, args)]) and True)
    study.run_fewshot()
    # mdm_lora, full and teacher_strength train; the guidance and share levels sample their method's runs
    assert len(calls) == 3 * 2 and not any(name.startswith(("calibration-guidance", "calibration-synthetic_share",
                                                             "calibration-mdm_lora@")) for name in calls)
    half = calls["calibration-teacher_strength=half_steps-seed1-fewshot"]
    assert half[half.index("--mdm_ckpt") + 1].endswith("model000000002.pt") and half[half.index("--seed") + 1] == "1"
    assert calls["calibration-mdm_lora-seed0-fewshot"][calls["calibration-mdm_lora-seed0-fewshot"].index("--preset") + 1] == MDM_LORA
    monkeypatch.setattr(study, "fewshot_done", lambda c, s: True)
    monkeypatch.setattr("mdm_kinemic.bench.calibrate.latest_step", lambda folder: (2, folder / "model000000002.pt"))
    study.run_synth()
    guided = calls["calibration-guidance=5.0-seed1-synth"]
    assert guided[-2:] == ["--guidance_param", "5.0"]
    assert guided[guided.index("--model_path") + 1] == str(study.root / BASELINE / "seed1" / "fewshot" / "model000000002.pt")
    shared = calls["calibration-mdm_lora@synthetic_share=2-seed0-synth"]  # tiny preset: 4 per class, half is 2
    assert shared[shared.index("--per_class") + 1] == "2"
    assert shared[shared.index("--model_path") + 1] == str(study.root / MDM_LORA / "seed0" / "fewshot" / "model000000002.pt")
    assert guided[guided.index("--per_class") + 1] == str(loaded.preset.per_class)
    reference = calls["calibration-mdm_lora@guidance=1.0-seed0-synth"]  # MDM + LoRA sampled at the same scale
    assert reference[-2:] == ["--guidance_param", "1.0"] and "/mdm_lora/seed0/fewshot/" in reference[reference.index("--model_path") + 1]
    monkeypatch.setattr(study, "synth_done", lambda c, s: True)
    # a split run --until teacher: the study trains the fixed evaluator (the benchmark's command) first
    failures = len(loaded.failures)
    study.run_har()
    evaluator = calls.pop("har-evaluator")
    assert evaluator[0] == "mdm_kinemic.har.evaluator" and evaluator[evaluator.index("--train_split") + 1] == "evaluator"
    assert calls.keys() == {n for n in calls if n.endswith("-fewshot") or n.endswith("-synth")}  # no evaluator: no HAR
    assert "no fixed evaluator" in loaded.failures[failures]
    loaded.evaluator_stem.parent.mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        loaded.evaluator_stem.with_suffix(suffix).write_text("{}")
    study.run_har()
    assert "har-evaluator" not in calls  # trained once
    har = [c for name, c in calls.items() if name.endswith("-har") or name == "calibration-real_only"]
    assert len(har) == 11 * 2 + 1  # 3 trained configurations, 2 guidance and 2 share levels for both methods
    for command in har:  # the study never reads the test split
        assert [command[i + 1] for i, arg in enumerate(command) if arg == "--test_split"] == ["val"]
    assert "--no-real_only" in calls["calibration-full-seed0-har"] and "--no-real_only" not in calls["calibration-real_only"]
    # a result of another number of recogniser seeds is never merged with new ones
    stale = study.run_dir(study.configs[1], 1) / "har" / "har_results.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"protocol": {"seeds": loaded.preset.har_seeds + 3}}))
    calls.clear()  # the Bench keeps going, yet stale results stop the study
    with pytest.raises(StageError, match=rf"{stale.parent}: seeds {loaded.preset.har_seeds + 3} \(preset "
                                         rf"{loaded.preset.har_seeds}\).*--har_seeds they had"):
        study.run_har()
    assert calls == {}


def test_the_longer_schedule_trains_mdm_lora_as_long_and_pairs_it_at_the_level(bench, monkeypatch):
    bench.run("split")
    loaded = load_bench(bench.out, PRESETS["tiny"], jobs=1, devices=(), nice=0, keep_going=True)
    loaded.teacher_dir.mkdir(parents=True, exist_ok=True)
    (loaded.teacher_dir / "model000000004.pt").touch()
    study = Study(loaded, plan(loaded.preset, ["fewshot_schedule"]), seeds=1)
    longer = f"{2 * loaded.preset.fewshot_steps}x{loaded.preset.fewshot_lr:g}"
    calls: dict[str, list[str]] = {}
    monkeypatch.setattr(loaded, "_run", lambda name, module, args, env=None: calls.setdefault(name, [module, *map(str, args)]) and True)
    study.run_fewshot()
    reference = calls[f"calibration-mdm_lora@fewshot_schedule={longer}-seed0-fewshot"]
    steps = str(2 * loaded.preset.fewshot_steps)  # the level's flags come last and win; one checkpoint, at its end
    assert reference[reference.index("--preset") + 1] == MDM_LORA and reference[-2:] == ["--num_steps", steps]
    assert reference[reference.index("--save_interval") + 1] == steps
    assert reference[reference.index("--save_dir") + 1] == str(study.root / f"mdm_lora@fewshot_schedule={longer}" / "seed0" / "fewshot")
    # the study reads it as done only at the level's steps, not at the preset's
    monkeypatch.setattr("mdm_kinemic.bench.calibrate.latest_step",
                        lambda folder: (loaded.preset.fewshot_steps, folder / "model.pt"))
    config = next(c for c in study.configs if c.name.startswith("mdm_lora@"))
    assert study.fewshot_done(study.configs[0], 0) and not study.fewshot_done(config, 0)


def test_a_sampling_level_is_done_only_when_drawn_from_its_methods_latest_run(bench, monkeypatch):
    bench.run("split")
    loaded = load_bench(bench.out, PRESETS["tiny"], jobs=1, devices=(), nice=0, keep_going=True)
    study = Study(loaded, plan(loaded.preset, ["guidance"]), seeds=1)
    guided = next(c for c in study.configs if c.name == "guidance=1.0")
    checkpoint = study.run_dir(study.configs[1], 0) / "fewshot" / "model000000002.pt"  # the baseline's run
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"baseline")
    folder = study.run_dir(guided, 0) / "synth"
    (folder / "new_joint_vecs").mkdir(parents=True)
    for i in range(loaded.preset.per_class * loaded.n_classes()):
        (folder / "new_joint_vecs" / f"s{i}.npy").touch()
    (folder / "manifest.json").write_text(json.dumps({"run": {"model_sha256": hashlib.sha256(b"baseline").hexdigest()}}))
    assert study.synth_done(guided, 0)
    checkpoint.write_bytes(b"baseline trained again")
    assert not study.synth_done(guided, 0)
    calls: list[str] = []
    monkeypatch.setattr(loaded, "_run", lambda name, module, args, env=None: calls.append(name) or True)
    study.run_synth()  # not drawn into again (synth refuses another run's folder): failed, naming both folders
    assert "calibration-guidance=1.0-seed0-synth" not in calls
    assert any(f.startswith("calibration-guidance=1.0-seed0-synth: ") and f"delete {folder} and {folder.parent / 'har'}" in f
               for f in loaded.failures)


def test_bad_input_is_a_clear_error(tmp_path, capsys, bench):
    assert main(["--bench", str(tmp_path / "nowhere")]) == 2
    assert "split.json does not exist" in capsys.readouterr().err
    bench.run("split")
    assert main(["--bench", str(bench.out), "--preset", "tiny"]) == 2
    assert "run the benchmark's teacher stage" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--bench", str(bench.out), "--factors", "warp"])
    assert exit_info.value.code == 2 and "unknown factor" in capsys.readouterr().err
    assert json.loads((bench.out / "split.json").read_text())["settings"]["target_contents"] == ["run"]


def test_the_study_starts_from_a_teacher_whose_stage_ended(bench, capsys, monkeypatch):
    bench.run("split")  # status.json: no teacher checkpoint yet
    bench.teacher_dir.mkdir(parents=True)
    (bench.teacher_dir / f"model{bench.preset.teacher_steps:09d}.pt").touch()
    # upstream goes on to the epoch's end: a checkpoint at teacher_steps while the driver still runs
    assert main(["--bench", str(bench.out), "--preset", "tiny", "--factors"]) == 2
    err = capsys.readouterr().err
    assert f"latest step {bench.preset.teacher_steps}" in err and "records -1" in err and "to its end" in err
    status = json.loads((bench.out / "status.json").read_text())
    (bench.out / "status.json").write_text(json.dumps({**status, "teacher_step": bench.preset.teacher_steps}))
    ran = []
    monkeypatch.setattr(Study, "run", lambda self: ran.append([c.name for c in self.configs]) or study_summary(self.configs, {}, {}, None))
    with FileLock(bench.out / BENCH_LOCK):  # the benchmark's driver on the same split: allowed
        assert main(["--bench", str(bench.out), "--preset", "tiny", "--factors"]) == 0
    assert ran == [[MDM_LORA, BASELINE]]
    with FileLock(bench.out / STUDY_DIR / STUDY_LOCK):  # another study of the split: refused
        assert main(["--bench", str(bench.out), "--preset", "tiny", "--factors"]) == 2
    assert "is being written by another python -m mdm_kinemic.bench.calibrate" in capsys.readouterr().err
    assert ran == [[MDM_LORA, BASELINE]]


class _Parsed(Exception):
    """Raised by the replaced parse_args: the command parsed, nothing ran."""


@pytest.mark.parametrize("config", plan(PRESETS["cpu"], list(factors(PRESETS["cpu"]))), ids=lambda c: c.name)
def test_every_level_is_flags_its_commands_accept(config, monkeypatch):
    import argparse

    from mdm_kinemic import synth, train_fewshot

    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        self.allow_abbrev = False
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    fewshot = ["--mdm_ckpt", "T.pt", "--save_dir", "S", "--target_data", "D", "--preset", config.preset,
               "--templates", "a person {label}.", "--num_steps", "150", "--seed", "1", *config.level.fewshot_args]
    for main_, argv in ((train_fewshot.main, fewshot), (synth.main, ["--model_path", "M.pt", "--out", "O", *config.level.synth_args])):
        with pytest.raises(_Parsed) as parsed:
            main_(argv)
        assert parsed.value.args[0] is not None
    if "--num_steps" in config.level.fewshot_args:  # the level's value wins over the baseline's
        with pytest.raises(_Parsed) as parsed:
            train_fewshot.main(fewshot)
        assert parsed.value.args[0].num_steps == 300
