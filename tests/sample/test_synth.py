"""python -m mdm_kinemic.synth: the synthetic dataset, its plan, resuming, and refused requests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR
from mdm_kinemic.data.fewshot_clips import FewShotClipsError, fewshot_lengths
from mdm_kinemic.synth import (
    SynthError,
    SynthSettings,
    _check_out,
    _recorded_data,
    main,
    plan_motions,
)

CLASSES = ("run on the spot", "side kick", "stretch oneself")  # tests/sample/conftest.py
LENGTHS = {0: [20, 24], 1: [16, 30], 2: [28, 28]}  # tests/sample/conftest.py TARGET_LENGTHS


def test_plan_draws_lengths_of_the_class_and_is_deterministic():
    plan = plan_motions([0, 2], 50, LENGTHS, seed=4)
    assert plan == plan_motions([0, 2], 50, LENGTHS, seed=4)
    assert [m["id"] for m in plan[:2]] + [plan[50]["id"]] == ["synth_c000_00000", "synth_c000_00001", "synth_c002_00000"]
    assert {m["length"] for m in plan if m["class"] == 0} == {20, 24}  # both drawn in 50 tries
    assert {m["length"] for m in plan if m["class"] == 2} == {28}
    assert len({m["seed"] for m in plan}) == 100
    assert plan_motions([0, 2], 50, LENGTHS, seed=5) != plan


def test_fewshot_lengths_match_classes_by_name(tiny_targets):
    lengths, ids = fewshot_lengths(["Side Kick", "run on the spot"], tiny_targets, None, "xsub")
    assert lengths == {0: [16, 30], 1: [20, 24]}
    assert ids == {0: ["real1_0", "real1_1"], 1: ["real0_0", "real0_1"]}
    with pytest.raises(FewShotClipsError, match="class 'yawn' has no clip in"):
        fewshot_lengths(["yawn"], tiny_targets, None, "xsub")
    with pytest.raises(FewShotClipsError, match="split splits/fewshot/S0001/xsub/train"):
        fewshot_lengths(["side kick"], tiny_targets, "S0001", "xsub")


def test_fewshot_lengths_of_the_recorded_target_clips_only(tiny_targets):
    lengths, ids = fewshot_lengths(list(CLASSES), tiny_targets, None, "xsub", target_ids=["real1_1", "real0_0", "real2_1"])
    assert lengths == {0: [20], 1: [30], 2: [28]}
    assert ids == {0: ["real0_0"], 1: ["real1_1"], 2: ["real2_1"]}


def test_recorded_data_settings_are_read_where_training_writes_them():
    section = {"class_names": ["side kick"], "target_ids": ["a"],
               "train": {"data": {"target_data": "/data/NTU-VIBE", "fewshot_split": "S0000", "class_names": None}}}
    assert _recorded_data(section, "target_data") == "/data/NTU-VIBE"
    assert _recorded_data(section, "fewshot_split") == "S0000"
    assert _recorded_data(section, "task_split") is None
    assert _recorded_data(section, "class_names") is None  # the model's class list is not a names file
    assert _recorded_data({"target_data": "/old"}, "target_data") == "/old"


def test_a_folder_of_another_run_or_of_other_data_is_refused(tmp_path):
    run = {"per_class": 383, "seed": 0}
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "mdm_kinemic.synth/1", "run": run, "samples": []}))
    assert _check_out(tmp_path, run)["run"] == run
    with pytest.raises(SynthError, match="holds another run's manifest \\(per_class: 383 there, 100 now\\)"):
        _check_out(tmp_path, {"per_class": 100, "seed": 0})
    other = tmp_path / "other"
    (other / "new_joint_vecs").mkdir(parents=True)
    (other / "new_joint_vecs" / "000001.npy").write_bytes(b"")
    with pytest.raises(SynthError, match="holds motions but no manifest.json"):
        _check_out(other, run)


@pytest.mark.parametrize("per_class", [0, -3])
def test_non_positive_sample_count_is_a_usage_error(per_class, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--model_path", "m.pt", "--out", "o", "--per_class", str(per_class)])
    assert exit_.value.code == 2
    assert "per_class (--per_class) must be an integer >= 1" in capsys.readouterr().err


def test_settings_validate_lengths_and_device():
    with pytest.raises(ValueError, match="length_frames must be in \\[0, 196\\]"):
        SynthSettings(model_path="m", out="o", length_frames=200)
    with pytest.raises(ValueError, match="device 'tpu' is not one of: auto, cpu, cuda, cuda:N, N"):
        SynthSettings(model_path="m", out="o", device="tpu")
    # upstream's integer --device: N is cuda:N, -1 the CPU
    assert SynthSettings(model_path="m", out="o", device=1).device == "cuda:1"
    assert SynthSettings(model_path="m", out="o", device="-1").device == "cpu"


def test_a_gpu_asked_for_without_cuda_is_refused_before_anything_is_read(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main(["--model_path", str(tmp_path / "missing.pt"), "--out", str(out), "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available on this machine; use --device cpu (or -1)" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def synth_run(run_cli, tiny_student, tiny_targets, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "out"
    result = run_cli(["-m", "mdm_kinemic.synth", "--model_path", str(tiny_student["kinemic"]), "--per_class", "3",
                      "--out", str(out), "--target_data", str(tiny_targets), "--timestep_respacing", "4",
                      "--batch_size", "2", "--grid", "2", "--seed", "1"], cwd=out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.upstream
def test_synth_writes_a_labelled_humanml3d_dataset(synth_run, tiny_targets):
    from mdm_kinemic.data.humanml3d import HumanML3D
    from mdm_kinemic.data.labels import load_labelled

    labelled = load_labelled(synth_run)
    assert labelled.class_names == list(CLASSES)
    assert labelled.labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    data = HumanML3D(synth_run)
    manifest = json.loads((synth_run / "manifest.json").read_text())
    assert manifest["run"]["per_class"] == 3 and manifest["run"]["timestep_respacing"] == "4"
    assert [m["id"] for m in manifest["samples"]] == labelled.ids == data.split("train")
    for m in manifest["samples"]:
        assert m["length"] in LENGTHS[m["class"]]
        assert data.motion(m["id"]).shape == (m["length"], 263)
        assert data.joints(m["id"]).shape == (m["length"], 22, 3)
        assert [c.text for c in data.captions(m["id"])] == [f"a person performs a {CLASSES[m['class']]}."]
    np.testing.assert_array_equal(data.mean, np.load(HUMANML3D_STATS_DIR / "Mean.npy"))
    assert (synth_run / "grid.png").is_file()


@pytest.mark.upstream
def test_resume_keeps_finished_motions_and_redraws_the_rest_identically(synth_run, tiny_student, tiny_targets):
    from mdm_kinemic.mdm.sampling.sampler import SamplerSettings
    from mdm_kinemic.mdm.upstream.options import UpstreamSettings
    from mdm_kinemic.synth import synthesize

    vecs = synth_run / "new_joint_vecs"
    before = {p.name: np.load(p) for p in vecs.iterdir()}
    kept = vecs / "synth_c000_00001.npy"
    kept_mtime = kept.stat().st_mtime_ns
    (vecs / "synth_c001_00002.npy").unlink()  # an unfinished motion: features missing
    (synth_run / "texts" / "synth_c002_00000.txt").unlink()  # another: caption missing
    settings = SynthSettings(model_path=str(tiny_student["kinemic"]), out=str(synth_run), per_class=3, seed=1,
                             target_data=str(tiny_targets), progress=False)
    synthesize(settings, SamplerSettings(timestep_respacing="4", batch_size=5), UpstreamSettings(clip_weights="random"))
    after = {p.name: np.load(p) for p in vecs.iterdir()}
    assert sorted(after) == sorted(before)
    for name, motion in before.items():
        np.testing.assert_allclose(after[name], motion, atol=1e-4, err_msg=name)  # batches differ: rounding
    assert kept.stat().st_mtime_ns == kept_mtime
    assert (synth_run / "texts" / "synth_c002_00000.txt").is_file()
    with pytest.raises(SynthError, match="another run's manifest \\(seed: 1 there, 2 now\\)"):
        synthesize(SynthSettings(model_path=settings.model_path, out=settings.out, per_class=3, seed=2,
                                 target_data=settings.target_data, progress=False),
                   SamplerSettings(timestep_respacing="4"), UpstreamSettings(clip_weights="random"))


def test_prompt_sets_follow_the_checkpoint_unless_told():
    from types import SimpleNamespace

    from mdm_kinemic.synth import _prompt_sets

    trained = SimpleNamespace(model_path="m", class_prompt_sets=(("a", "b"), ("c",)))
    plain = SimpleNamespace(model_path="m", class_prompt_sets=())
    assert _prompt_sets(trained, None) == (("a", "b"), ("c",))
    assert _prompt_sets(trained, False) == () and _prompt_sets(plain, None) == ()
    with pytest.raises(SynthError, match="one prompt per class"):
        _prompt_sets(plain, True)


@pytest.mark.upstream
def test_prompt_augmentation_draws_each_motions_prompt_by_its_seed(tiny_student, tiny_targets, tmp_path):
    import shutil

    from mdm_kinemic.core.prompts import draw_per_seed
    from mdm_kinemic.data.humanml3d import HumanML3D
    from mdm_kinemic.mdm.sampling.sampler import SamplerSettings
    from mdm_kinemic.mdm.upstream.options import UpstreamSettings
    from mdm_kinemic.synth import synthesize

    folder = tmp_path / "student"
    shutil.copytree(tiny_student["kinemic"].parent, folder)
    args = json.loads((folder / "args.json").read_text())
    sets = [[f"a person performs a {name}.", f"someone does a {name}.", f"a {name}, by a person."] for name in CLASSES]
    args["kinemic"]["class_prompt_sets"] = sets
    (folder / "args.json").write_text(json.dumps(args))
    out = tmp_path / "out"
    settings = SynthSettings(model_path=str(folder), out=str(out), per_class=4, seed=3, target_data=str(tiny_targets),
                             progress=False)
    synthesize(settings, SamplerSettings(timestep_respacing="2", batch_size=12), UpstreamSettings(clip_weights="random"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["class_prompt_sets"] == sets
    samples = manifest["samples"]
    expected = draw_per_seed(sets, [m["class"] for m in samples], [m["seed"] for m in samples])
    data = HumanML3D(out)
    assert [data.captions(m["id"])[0].text for m in samples] == expected
    assert all(t in sets[m["class"]] for t, m in zip(expected, samples))
    assert len(set(expected)) > 3  # not one prompt per class
