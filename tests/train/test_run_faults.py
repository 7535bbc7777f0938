"""train_fewshot's faults: every missing input in one message before anything is written, the
checkpoint's feature width named before its Mean/Std, a run stopped at a non-finite loss."""

from __future__ import annotations

import math

import pytest
import torch

from test_train_fewshot import cli_args


def test_every_missing_input_is_one_message_and_no_save_folder(tmp_path, cli):
    run = tmp_path / "save" / "run"
    result = cli.run("mdm_kinemic.train_fewshot", [
        "--mdm_ckpt", str(tmp_path / "no_such_checkpoint"), "--target_data", str(tmp_path / "no_target"),
        "--source_data", str(tmp_path / "no_source"), "--save_dir", str(run), "--mining_encoder", "clip",
    ], timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "every missing or unusable input" in result.stderr
    listed = [line for line in result.stderr.splitlines() if line.startswith("- ")]
    flags = ("--mdm_root" if "upstream MDM (--mdm_root)" in result.stderr else "--mdm_ckpt", "--target_data",
             "--source_data", "--clip_weights")
    assert all(any(flag in line for line in listed) for flag in flags), result.stderr
    assert "Traceback" not in result.stderr
    assert not run.exists() and not run.parent.exists()


@pytest.mark.upstream
def test_feature_width_of_the_checkpoint_is_named_before_mean_std(tmp_path, tiny_data, cli):
    from mdm_kinemic.mdm.training.training_loop import RunInputError, check_run_inputs
    from mdm_kinemic.train_fewshot import build_parser, config_from_args

    kit = tmp_path / "kit"
    made = cli.run("mdm_kinemic.mdm.checkpoints.random_checkpoint", [
        "--like", "kit_trans_enc_512", "--out", str(kit), "--layers", "1", "--latent_dim", "32",
        "--clip_weights", "random"], timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    args = build_parser().parse_args(cli_args(kit, tiny_data, tmp_path / "run", tmp_path / "cache"))
    with pytest.raises(RunInputError) as err:
        check_run_inputs(config_from_args(args).with_absolute_paths())
    message = str(err.value)
    assert "kit (251 features per frame)" in message and "[263]" in message
    assert "Mean" not in message
    assert not (tmp_path / "run").exists()


@pytest.mark.upstream
def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_checkpoint, tiny_data, cli):
    run = tmp_path / "run"
    # Adam's first steps move every weight by about lr: 1e30 overflows the next forward pass
    args = cli_args(tiny_checkpoint, tiny_data, run, tmp_path / "cache", "--num_steps", "4", "--lr", "1e30")
    args[args.index("--save_interval") + 1] = "1"
    result = cli.run("mdm_kinemic.train_fewshot", args)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "is not finite" in result.stderr and "Traceback" not in result.stderr
    saved = sorted(run.glob("model*.pt"))
    assert saved and "model000000004.pt" not in [p.name for p in saved]
    step = int(saved[-1].stem[5:])
    assert f"last good checkpoint (step {step})" in result.stderr
    payload = torch.load(saved[-1], map_location="cpu", weights_only=True)
    tensors = [v for v in payload.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors)
    assert math.isfinite(float(sum(t.double().abs().sum() for t in tensors)))
