"""The zero-shot teacher: a plain MDM sampled per class from class prompts (mdm/sampling/prompt_model.py, synth)."""

from __future__ import annotations

import json

import pytest
import torch

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def plain(tiny_student):
    from mdm_kinemic.mdm.sampling.prompt_model import (
        load_prompt_model,
        prompt_model_info,
    )

    info = prompt_model_info(tiny_student["base"], ["side kick", "wave"], "a person does a {label}.")
    return load_prompt_model(info, clip_weights="random")


def test_info_formats_the_prompt_of_each_class(tiny_student):
    from mdm_kinemic.mdm.sampling.prompt_model import (
        is_kinemic_checkpoint,
        prompt_model_info,
    )

    info = prompt_model_info(tiny_student["base"].parent, ["side kick", "wave"], "a person does a {label}.")
    assert info.class_prompts == ("a person does a side kick.", "a person does a wave.")
    assert info.model_path == tiny_student["base"]
    assert not is_kinemic_checkpoint(tiny_student["base"])
    assert is_kinemic_checkpoint(tiny_student["kinemic"])


@pytest.mark.parametrize(("which", "names", "template", "message"), [
    ("kinemic", ["a"], "{label}", "is a KineMIC checkpoint"),
    ("base", [], "{label}", "no classes"),
    ("base", ["a"], "a person waves", "has no '{label}'"),
])
def test_info_refuses_what_it_cannot_sample(tiny_student, which, names, template, message):
    from mdm_kinemic.mdm.sampling.prompt_model import prompt_model_info
    from mdm_kinemic.mdm.sampling.student import SamplingInputError

    with pytest.raises(SamplingInputError, match=message):
        prompt_model_info(tiny_student[which], names, template)


def test_a_dropped_text_row_is_upstreams_unconditional_pass(plain):
    network = plain.model.network
    x = torch.randn(2, 263, 1, 12)
    t = torch.tensor([3, 7])
    drop = torch.tensor([False, True])
    with torch.no_grad():
        got = plain.model(x, t, {"action": torch.tensor([1, 0]), "drop_text": drop})
        prompts = plain.model.prompt_features()
        no_mask = torch.ones((1, 1, 1, 1), dtype=torch.bool)
        cond = network(x[:1], t[:1], {"text_embed": prompts[1:2][None], "mask": no_mask})
        uncond = network(x[1:], t[1:], {"text_embed": prompts[0:1][None], "mask": no_mask, "uncond": True})
    torch.testing.assert_close(got[:1], cond)
    torch.testing.assert_close(got[1:], uncond)
    assert not torch.allclose(cond, network(x[:1], t[:1], {"text_embed": prompts[0:1][None], "mask": no_mask}))


def test_the_action_selects_its_class_prompt(plain):
    x = torch.randn(1, 263, 1, 10)
    t = torch.tensor([5])
    with torch.no_grad():
        by_action = plain.model(x, t, {"action": torch.tensor([[0]])})
        by_text = plain.model(x, t, {"text": ["a person does a side kick."]})
    torch.testing.assert_close(by_action, by_text)


def test_synth_samples_a_plain_mdm_from_the_class_prompts(run_cli, tiny_student, tiny_targets, tmp_path):
    from mdm_kinemic.data.labels import load_labelled

    out = tmp_path / "zero_shot"
    result = run_cli(["-m", "mdm_kinemic.synth", "--model_path", str(tiny_student["base"]), "--per_class", "2",
                      "--out", str(out), "--target_data", str(tiny_targets), "--norm_stats",
                      str(HUMANML3D_STATS_DIR), "--prompt_template", "a person {label}.",
                      "--timestep_respacing", "2", "--no-progress"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    labelled = load_labelled(out, "train")
    assert sorted(labelled.labels) == [0, 0, 1, 1, 2, 2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["class_prompts"] == ["a person run on the spot.", "a person side kick.",
                                                "a person stretch oneself."]
    side_kick = next(m["id"] for m in manifest["samples"] if m["class"] == 1)
    assert (out / "texts" / f"{side_kick}.txt").read_text().startswith("a person side kick.#")
    assert all(m["length"] in (16, 30) for m in manifest["samples"] if m["class"] == 1)


def test_synth_of_a_plain_mdm_needs_the_target_classes(run_cli, tiny_student, tmp_path):
    result = run_cli(["-m", "mdm_kinemic.synth", "--model_path", str(tiny_student["base"]), "--out",
                      str(tmp_path / "out")], cwd=tmp_path)
    assert result.returncode == 2
    assert "plain MDM checkpoint" in result.stderr and "--target_data" in result.stderr


NTU_NAMES = [f"ntu action {k + 1}" for k in range(120)]


@pytest.fixture(scope="module")
def ntu_vibe_like(tmp_path_factory):
    """The authors' NTU-VIBE layout in miniature: 120 NTU class names beside the folder, clips
    (2 each, 18 and 22 frames) of A099, A102 and A104 only, split S0000 listing them."""
    import numpy as np

    from mdm_kinemic.data.humanml3d import write_clip
    from mdm_kinemic.data.labels import ntu_label

    parent = tmp_path_factory.mktemp("ntu")
    root = parent / "NTU-VIBE"
    mean = np.load(HUMANML3D_STATS_DIR / "Mean.npy")
    names = [f"S018C001P0{p}R001A{a:03d}" for a in (99, 102, 104) for p in (43, 50)]
    for k, name in enumerate(names):
        write_clip(root, name, np.tile(mean, (18 if k % 2 == 0 else 22, 1)).astype(np.float32))
    (parent / "ntu_classes.txt").write_text("\n".join(NTU_NAMES) + "\n")
    split = root / "splits" / "fewshot" / "S0000" / "xsub"
    split.mkdir(parents=True)
    (split / "train.txt").write_text("\n".join(names) + "\n")
    (split / "train_y.txt").write_text("\n".join(str(ntu_label(n)) for n in names) + "\n")
    return root


@pytest.mark.parametrize("split", [(), ("--fewshot_split", "S0000")])
def test_synth_of_a_plain_mdm_samples_the_classes_with_clips(run_cli, tiny_student, ntu_vibe_like, tmp_path, split):
    """120 class names, clips of 3: the 3 are sampled, and the log says so (no --actions given)."""
    out = tmp_path / "zero_shot"
    result = run_cli(["-m", "mdm_kinemic.synth", "--model_path", str(tiny_student["base"]), "--target_data",
                      str(ntu_vibe_like), "--per_class", "2", "--out", str(out), *split,
                      "--timestep_respacing", "2", "--no-progress"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    wanted = [NTU_NAMES[98], NTU_NAMES[101], NTU_NAMES[103]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["classes"] == wanted
    assert sorted(m["class"] for m in manifest["samples"]) == [98, 98, 101, 101, 103, 103]
    assert {m["length"] for m in manifest["samples"]} <= {18, 22}
    assert f"sampling the 3 of 120 classes of {ntu_vibe_like}" in result.stderr
    assert ", ".join(wanted) in result.stderr
