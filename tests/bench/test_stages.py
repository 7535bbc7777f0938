"""The benchmark's stage driver: order, skipping finished stages, failures naming their log, presets."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from mdm_kinemic.bench.presets import PRESETS, BenchPreset, get_preset
from mdm_kinemic.bench.stages import (
    CEILING,
    REAL_ONLY,
    VARIANTS,
    ZERO_SHOT,
    StageError,
    latest_step,
)



def test_latest_step_reads_upstream_checkpoint_names(tmp_path):
    assert latest_step(tmp_path / "absent") == (-1, None)
    for name in ("model000000004.pt", "model000000031.pt", "model000000009.pt", "opt000000040.pt", "args.json"):
        (tmp_path / name).touch()
    assert latest_step(tmp_path) == (31, tmp_path / "model000000031.pt")


def test_split_stage_runs_once_and_status_is_written(bench):
    assert bench.run("split") == []
    summary = (bench.out / "split.json").read_text()
    assert json.loads((bench.out / "status.json").read_text())["teacher_step"] == -1
    first = json.loads((bench.out / "stage_wall_seconds.json").read_text())["split"]
    bench.run("split")
    assert (bench.out / "split.json").read_text() == summary
    assert json.loads((bench.out / "stage_wall_seconds.json").read_text())["split"] >= first > 0  # summed over runs
    assert (bench.target / "splits/fewshot/S0000/xsub/train.txt").read_text().count("\n") == 2


def test_stage_without_its_inputs_stops_or_is_recorded(bench):
    with pytest.raises(StageError, match="no finished teacher checkpoint"):
        bench.run(only=["fewshot"])
    first = dataclasses.asdict(bench.preset)
    assert json.loads((bench.out / "status.json").read_text())["preset"] == first  # a failed first run records its sizes
    bench.preset = dataclasses.replace(bench.preset, har_lr=0.5)
    with pytest.raises(StageError):
        bench.run(only=["fewshot"])
    assert json.loads((bench.out / "status.json").read_text())["preset"] == first  # a failed later one keeps them
    bench.preset = PRESETS["tiny"]
    bench.keep_going = True
    failures = bench.run(only=["fewshot", "synth", "table"])
    assert [f.split(":")[0] for f in failures] == ["fewshot", *(f"synth-{n}" for n in (ZERO_SHOT, *VARIANTS)), "table"]


def test_a_cut_off_teacher_or_student_is_not_built_on(bench):
    bench.teacher_dir.mkdir(parents=True)
    (bench.teacher_dir / "model000000001.pt").touch()
    with pytest.raises(StageError, match=rf"stops at step 1 of {bench.preset.teacher_steps}\); run the teacher stage"):
        bench.run(only=["fewshot"])
    (bench.teacher_dir / f"model{bench.preset.teacher_steps:09d}.pt").touch()
    bench.fewshot_dir("full").mkdir(parents=True)
    cut = bench.preset.fewshot_steps - 1
    (bench.fewshot_dir("full") / f"model{cut:09d}.pt").touch()
    bench.keep_going = True
    sampled = []
    bench._run = lambda name, module, args, env=None: sampled.append(name) or True
    bench.run(only=["synth"])  # the finished teacher is sampled; the students are not
    assert sampled == [f"synth-{ZERO_SHOT}"]
    failures = [f for f in bench.failures if f.startswith("synth-full")]
    assert len(failures) == 1 and f"stops at step {cut} of {bench.preset.fewshot_steps}" in failures[0]


def test_failed_command_names_its_log(bench):
    with pytest.raises(StageError, match=r"exited with 1; see .*logs[/\\]probe\.log"):
        bench._run("probe", "mdm_kinemic.bench.no_such_module", [])
    assert "no_such_module" in (bench.out / "logs" / "probe.log").read_text()


def test_unknown_stage_is_refused(bench):
    with pytest.raises(ValueError, match="choose from split, teacher"):
        bench.run("sample")


def test_table_rows_follow_the_papers_order_and_skip_missing_runs(bench):
    assert bench.table_rows() == []
    for name in (CEILING, "full", ZERO_SHOT, "base_dww", REAL_ONLY):
        bench.har_dir(name).mkdir(parents=True)
        (bench.har_dir(name) / "har_results.json").write_text("{}")
    har = bench.out / "har"
    assert bench.table_rows() == [
        f"real only={har / REAL_ONLY / 'har_results.json'}:real_only",
        f"MDM zero-shot (teacher)={har / ZERO_SHOT / 'har_results.json'}",
        f"KineMIC Full={har / 'full' / 'har_results.json'}",
        f"real target data in full (ceiling)={har / CEILING / 'har_results.json'}:real_only",
    ]
    assert bench.table_rows("table2") == [
        f"real only={har / REAL_ONLY / 'har_results.json'}:real_only",
        f"+ dww={har / 'base_dww' / 'har_results.json'}",
        f"KineMIC Full={har / 'full' / 'har_results.json'}",
    ]
    with pytest.raises(ValueError, match="unknown table 'table3'"):
        bench.table_rows("table3")


def test_without_the_ablation_only_table1_variants_run(bench):
    assert bench.variants == tuple(VARIANTS)
    bench.ablation = False
    assert bench.variants == ("mdm_lora", "full")
    bench.run("split")
    status = json.loads((bench.out / "status.json").read_text())
    assert list(status["fewshot_steps"]) == ["mdm_lora", "full"]
    assert list(status["har_done"]) == [CEILING, REAL_ONLY, ZERO_SHOT, "mdm_lora", "full"]
    for name in ("base", "full"):
        bench.har_dir(name).mkdir(parents=True)
        (bench.har_dir(name) / "har_results.json").write_text("{}")
    assert bench.table_rows("table2") == []
    assert bench.table_rows() == [f"KineMIC Full={bench.out / 'har' / 'full' / 'har_results.json'}"]


def test_synth_is_done_only_with_every_clip_from_the_latest_checkpoint(bench):
    folder = bench.synth_dir("full")
    checkpoint = bench.fewshot_dir("full") / "model000000002.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"first run")
    (folder / "new_joint_vecs").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"run": {"model_sha256": hashlib.sha256(b"first run").hexdigest()}}))
    for i in range(bench.preset.per_class * bench.n_classes() - 1):
        (folder / "new_joint_vecs" / f"s{i}.npy").touch()
    assert not bench.synth_done("full")
    (folder / "new_joint_vecs" / "last.npy").touch()
    assert bench.synth_done("full")
    # the run trained again under the same file name: the set was drawn from another model
    checkpoint.write_bytes(b"second run")
    assert not bench.synth_done("full")
    checkpoint.unlink()
    assert not bench.synth_done("full")  # no checkpoint at all
    # the zero-shot set is the teacher's
    teacher = bench.teacher_dir / "model000000004.pt"
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b"first run")
    folder.rename(bench.synth_dir(ZERO_SHOT))
    assert bench.synth_done(ZERO_SHOT)


def test_a_set_drawn_from_an_older_checkpoint_is_failed_not_reused(bench, monkeypatch):
    bench.keep_going = True
    bench.run("split")
    checkpoint = bench.fewshot_dir("full") / f"model{bench.preset.fewshot_steps:09d}.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"trained again")
    folder = bench.synth_dir("full")
    (folder / "new_joint_vecs").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"run": {"model_sha256": hashlib.sha256(b"first run").hexdigest()}}))
    calls: list[str] = []
    monkeypatch.setattr(bench, "_run", lambda name, module, args, env=None: calls.append(name) or True)
    bench.stage_synth()
    assert "synth-full" not in calls  # synth would refuse the folder: another run's manifest
    expected = f"{folder} was drawn from another checkpoint than {checkpoint}"
    assert any(f.startswith("synth-full: ") and expected in f and f"delete {folder} and {bench.har_dir('full')}" in f
               for f in bench.failures)
    # its HAR result, already there, describes the old model: failed too, not scored again
    bench.har_dir("full").mkdir(parents=True)
    (bench.har_dir("full") / "har_results.json").write_text("{}")
    bench.stage_har()
    assert "har-full" not in calls and any(f.startswith("har-full: ") and expected in f for f in bench.failures)
    (folder / "manifest.json").write_text("{not json")  # unreadable: neither done nor stale, synth decides
    assert not bench.synth_done("full") and not bench._fail_stale("synth", ["full"])


def test_presets_are_validated():
    assert get_preset("cpu", per_class=7).per_class == 7
    assert get_preset("full", device=None) == PRESETS["full"]
    assert (PRESETS["full"].teacher_latent_dim, PRESETS["full"].teacher_layers, PRESETS["full"].per_class) == (512, 8, 383)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_preset("huge")
    for kwargs, field in [({"har_seeds": 0}, "har_seeds"), ({"text_encoder": "bert"}, "text_encoder"), ({"device": "tpu"}, "device")]:
        with pytest.raises(ValueError, match=f"BenchPreset.{field}"):
            BenchPreset(**kwargs)


def test_every_preset_field_has_cli_help():
    from dataclasses import fields

    from mdm_kinemic.bench.bandai import build_parser

    assert all(f.metadata.get("help") for f in fields(BenchPreset))
    args = build_parser().parse_args(["--bandai_root", "x", "--out", "y", "--per_class", "9", "--device", "cuda"])
    assert (args.per_class, args.device, args.har_seeds, args.until) == (9, "cuda", None, "split")


def test_learning_rate_is_a_positive_float_flag():
    from mdm_kinemic.bench.bandai import build_parser

    args = build_parser().parse_args(["--bandai_root", "x", "--out", "y", "--fewshot_lr", "3e-4"])
    assert get_preset("cpu", fewshot_lr=args.fewshot_lr).fewshot_lr == pytest.approx(3e-4)
    with pytest.raises(ValueError, match="BenchPreset.fewshot_lr must be a number > 0"):
        BenchPreset(fewshot_lr=0.0)


def test_stage_commands_carry_the_preset(bench, monkeypatch):
    calls = {}
    monkeypatch.setattr(bench, "_run", lambda name, module, args, env=None: calls.setdefault(name, [str(a) for a in args]) and True)
    bench.teacher_dir.mkdir(parents=True)
    (bench.teacher_dir / "model000000004.pt").touch()
    bench.stage_fewshot()
    for variant in VARIANTS:
        bench.fewshot_dir(variant).mkdir(parents=True)
        (bench.fewshot_dir(variant) / "model000000002.pt").touch()
    bench.stage_synth()
    bench.keep_going = True  # no synthetic sets exist: only the ceiling's har command runs
    bench.stage_har()
    p = bench.preset

    def value(name: str, flag: str) -> str:
        return calls[name][calls[name].index(flag) + 1]

    assert float(value("fewshot-full", "--lr")) == p.fewshot_lr
    assert value("fewshot-mdm_lora", "--preset") == "mdm_lora"
    assert value(f"synth-{ZERO_SHOT}", "--prompt_template") == "a person {label}."
    assert value(f"synth-{ZERO_SHOT}", "--model_path").endswith("model000000004.pt")
    assert "--prompt_template" not in calls["synth-full"]
    assert (int(value(f"har-{CEILING}", "--base_channels")), int(value(f"har-{CEILING}", "--clip_len"))) == (
        p.har_base_channels, p.har_clip_len)


def test_command_wall_seconds_add_up_over_resumed_runs(bench):
    bench._run("probe", "mdm_kinemic.bench.presets", [])
    assert "probe" in json.loads((bench.out / "stage_seconds.json").read_text())
    bench._record_seconds("teacher", 1.25)
    bench._record_seconds("teacher", 2.5)
    assert json.loads((bench.out / "stage_seconds.json").read_text())["teacher"] == 3.75


def test_har_results_of_another_protocol_stop_the_stage_naming_them(bench):
    bench.har_dir("full").mkdir(parents=True)
    protocol = {"epochs": bench.preset.har_epochs, "min_iterations": bench.preset.har_min_iterations, "lr": 0.1,
                "base_channels": bench.preset.har_base_channels, "clip_len": bench.preset.har_clip_len, "seeds": 1}
    (bench.har_dir("full") / "har_results.json").write_text(json.dumps({"protocol": protocol}))
    assert bench.stale_har_results() == []  # the tiny preset's lr is 0.1
    bench.preset = get_preset("tiny", har_lr=0.02)
    assert bench.stale_har_results() == [f"{bench.har_dir('full')}: lr 0.1 (preset 0.02)"]
    with pytest.raises(StageError, match=r"another ST-GCN protocol.*har[/\\]full: lr 0.1 \(preset 0.02\).*Remove them"):
        bench.stage_har()


def test_status_records_the_sizes_the_run_used(bench):
    bench.preset = get_preset("tiny", har_lr=0.05)
    bench.run("split")
    assert json.loads((bench.out / "status.json").read_text())["preset"]["har_lr"] == 0.05
