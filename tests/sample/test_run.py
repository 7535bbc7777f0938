"""The no-patch route: upstream's unmodified sample/generate.py under python -m mdm_kinemic.run --kinemic."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

from mdm_kinemic.run import absolute_paths

CLASSES = ("run on the spot", "side kick", "stretch oneself")  # tests/sample/conftest.py's student



def test_absolute_paths_resolves_path_flags_in_both_forms(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model000000001.pt").write_bytes(b"")
    (tmp_path / "ckpt" / "model000000009.pt").write_bytes(b"")
    argv = ["--model_path", "ckpt", "--output_dir=out", "--text_prompt", "a person walks", "--input_text", "",
            "--norm_stats", "~/stats"]
    assert absolute_paths(argv, cwd=str(tmp_path)) == [
        "--model_path", str(tmp_path / "ckpt" / "model000000009.pt"),  # a folder becomes its latest model file
        f"--output_dir={tmp_path / 'out'}",
        "--text_prompt", "a person walks",
        "--input_text", "",
        "--norm_stats", os.path.expanduser("~/stats"),
    ]


@pytest.fixture(scope="module")
def action_run(runner_generate):
    return runner_generate("--action_index", "2", "0", "--num_samples", "1")


@pytest.mark.upstream
def test_generate_samples_each_action_num_samples_times(action_run):
    out, results = action_run
    # class 2, then class 0, named in results; 1 s at 20 fps; joints (22, 3) per frame
    assert results["text"] == [CLASSES[2], CLASSES[0]]
    assert results["motion"].shape == (2, 22, 3, 20)
    assert list(results["lengths"]) == [20, 20]
    assert (results["num_samples"], results["num_repetitions"]) == (2, 1)
    assert np.isfinite(results["motion"]).all()
    assert sorted(p.name for p in out.iterdir()) == ["results.npy", "results.txt", "results_len.txt",
                                                     "samples_00_to_01.mp4"]


@pytest.mark.upstream
def test_dual_composition_conditions_on_the_prompt_and_the_action(dual_run, action_run):
    _, action_only = action_run
    _, dual = dual_run
    assert dual["text"] == ["a person is jumping"] * 2
    # the same seed, batch and actions as action_run (so the same noise), another text: other motions
    assert dual["motion"].shape == action_only["motion"].shape
    assert not np.allclose(dual["motion"], action_only["motion"], atol=1e-3)


@pytest.mark.upstream
def test_unknown_action_is_a_clear_error_listing_the_valid_ones(run_cli, tiny_student, tmp_path):
    result = run_cli(["-m", "mdm_kinemic.run", "sample.generate", "--kinemic", "--model_path",
                      str(tiny_student["kinemic"]), "--action_name", "jump", "--device", "-1"], cwd=tmp_path)
    assert result.returncode == 2
    assert "action 'jump' is not a class of the KineMIC checkpoint" in result.stderr
    assert "0: 'run on the spot', 1: 'side kick', 2: 'stretch oneself'" in result.stderr


@pytest.mark.upstream
def test_missing_clip_weights_are_one_message_without_a_traceback(run_cli, tiny_student, tmp_path):
    result = run_cli(["-m", "mdm_kinemic.run", "sample.generate", "--kinemic", "--model_path",
                      str(tiny_student["kinemic"]), "--device", "-1"], cwd=tmp_path,
                     env={"MDM_KINEMIC_CLIP_WEIGHTS": str(tmp_path / "ViT-B-32.pt")})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "ViT-B-32.pt" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def _generate_namespace(model_path, **overrides) -> argparse.Namespace:
    values = {"model_path": str(model_path), "kinemic": True, "action_name": "", "action_file": "",
              "action_index": [], "text_prompt": "", "input_text": "", "num_samples": 3, "clip_weights": None}
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.mark.upstream
@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_samples": 0}, "--num_samples must be >= 1"),
        ({"action_index": [3]}, "--action_index 3 is out of range"),
        ({"input_text": "prompts.txt"}, "--input_text is not supported"),
    ],
)
def test_bad_requests_are_refused(tiny_student, overrides, message):
    from mdm_kinemic.mdm.sampling.plugin import PLUGIN, SamplingInputError

    with pytest.raises(SamplingInputError, match=message):
        PLUGIN.apply_rules(_generate_namespace(tiny_student["kinemic"], **overrides))


@pytest.mark.upstream
def test_plain_mdm_checkpoint_with_kinemic_is_refused(tiny_student):
    from mdm_kinemic.mdm.sampling.plugin import PLUGIN, SamplingInputError

    with pytest.raises(SamplingInputError, match="is a plain MDM checkpoint .* but --kinemic was given"):
        PLUGIN.apply_rules(_generate_namespace(tiny_student["base"]))


@pytest.mark.upstream
def test_apply_rules_writes_num_samples_lines_per_action(tiny_student):
    from mdm_kinemic.mdm.sampling.plugin import PLUGIN

    args = PLUGIN.apply_rules(_generate_namespace(tiny_student["kinemic"], action_name="SIDE KICK", num_samples=3))
    with open(args.action_file, encoding="utf-8") as f:
        assert f.read().splitlines() == ["side kick"] * 3
    assert (args.action_name, args.num_samples, args.kinemic_actions) == ("", 3, [1, 1, 1])
    every = PLUGIN.apply_rules(_generate_namespace(tiny_student["kinemic"], num_samples=1))
    assert every.kinemic_actions == [0, 1, 2]


@pytest.mark.upstream
def test_kinemic_on_the_command_line_wins_over_args_json(tiny_student, monkeypatch):
    """args.json's "kinemic" key holds the checkpoint's section; upstream's parse_and_load_from_model
    overwrites the dataset, model and diffusion flags from args.json, and --kinemic stays as given."""
    from mdm_kinemic.mdm.sampling.plugin import PLUGIN
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream()
    from utils import parser_util

    saved = json.loads((tiny_student["kinemic"].parent / "args.json").read_text())
    assert isinstance(saved["kinemic"], dict) and saved["layers"] == 2
    argv = ["generate", "--model_path", str(tiny_student["kinemic"]), "--kinemic", "--layers", "8"]
    monkeypatch.setattr("sys.argv", argv)  # upstream reads --model_path from sys.argv
    parser = argparse.ArgumentParser()
    parser_util.add_sampling_options(parser)
    parser_util.add_generate_options(parser)
    PLUGIN.add_options(parser)
    args = parser_util.parse_and_load_from_model(parser)
    assert args.kinemic is True  # the command line's, not args.json's section
    assert args.layers == 2  # a model flag: args.json's, as upstream does
