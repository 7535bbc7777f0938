"""python -m mdm_kinemic.train_fewshot end to end on upstream MDM, at toy size.

Upstream tier: a tiny random-weight checkpoint made by random_checkpoint (2 layers, width 64),
random CLIP, toy target/source datasets in HumanML3D layout, a few steps on CPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR
from mdm_kinemic.mdm.upstream.locate import locate_upstream

pytestmark = pytest.mark.upstream


def cli_args(tiny_checkpoint: Path, tiny_data: dict, save_dir: Path, cache: Path, *extra: str) -> list[str]:
    """A dry run's flags: random MDM and CLIP, no --norm_stats (HumanML3D's ship with the package)."""
    return [
        "--mdm_ckpt", str(tiny_checkpoint), "--save_dir", str(save_dir),
        "--target_data", str(tiny_data["target"]), "--source_data", str(tiny_data["source"]), "--shots", "2",
        "--top_k", "3", "--mining_encoder", "minilm", "--embedding_cache", str(cache), "--clip_weights", "random",
        "--device", "cpu", "--lora_rank", "4", "--log_interval", "1",
        "--save_interval", "2", "--no-progress", *extra,
    ]


@pytest.fixture(scope="module")
def smoke_run(tiny_checkpoint, tiny_data, tmp_path_factory, cli):
    """One uninterrupted 4-step run through the CLI in a subprocess."""
    root = tmp_path_factory.mktemp("smoke")
    args = cli_args(tiny_checkpoint, tiny_data, root / "run", root / "cache", "--num_steps", "4", "--use_ema")
    result = cli.run("mdm_kinemic.train_fewshot", args)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"dir": root / "run", "args": args, "stderr": result.stderr}


def losses(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]


def test_parser_defaults_are_the_papers():
    from mdm_kinemic.train_fewshot import build_parser, config_from_args

    args = build_parser().parse_args(["--mdm_ckpt", "m", "--save_dir", "s", "--target_data", "t", "--source_data", "x"])
    config = config_from_args(args)
    assert (config.optim.num_steps, config.optim.lr, config.optim.grad_clip, config.optim.weight_decay) == (5000, 2e-5, 1.0, 1e-5)
    assert (config.mining.top_k, config.objective.contrastive_settings.temperature) == (250, 0.07)
    assert (config.lora.rank, config.lora.alpha, config.lora.dropout) == (16, 32.0, 0.1)
    weights = config.objective.weights
    assert (weights.lambda_rec, weights.lambda_window_rec, weights.lambda_con, weights.lambda_dist) == (1, 1, 1, 1)
    assert config.objective.preset_name == "full" and config.objective.dww
    assert (config.objective.text_dropout, config.objective.action_dropout) == (0.1, 0.1)
    assert (config.teacher_mode, config.mining_run.mining_encoder, config.data.fewshot_split) == ("eval", "clip", "S0000")
    assert not config.noise.shared_noise and config.objective.contrastive_settings.bank_size == 0


@pytest.mark.parametrize("flags, expected", [
    (["--preset", "mdm_lora"], (False, False, False, False)),
    (["--preset", "base"], (True, True, False, False)),
    (["--preset", "base_dist"], (True, True, True, False)),
    (["--preset", "base_dww"], (True, True, False, True)),
    (["--preset", "full"], (True, True, True, True)),
    (["--no-dww"], (True, True, True, False)),
    (["--preset", "base", "--distillation"], (True, True, True, False)),
])
def test_table2_presets_and_switches(flags, expected):
    from mdm_kinemic.train_fewshot import build_parser, config_from_args

    args = build_parser().parse_args(["--mdm_ckpt", "m", "--save_dir", "s", "--target_data", "t", "--source_data", "x", *flags])
    objective = config_from_args(args).objective
    assert (objective.contrastive, objective.window_rec, objective.distillation, objective.dww) == expected


BASE_FLAGS = ["--mdm_ckpt", "m", "--save_dir", "s", "--target_data", "t", "--source_data", "x"]


def test_paper_preset_sets_the_papers_values_over_changed_defaults(monkeypatch):
    import dataclasses

    from mdm_kinemic.core.contrastive import ContrastiveSettings
    from mdm_kinemic.core.objective import LossWeights, ObjectiveSettings
    from mdm_kinemic.train_fewshot import PAPER_VALUES, build_parser, config_from_args, parse_args

    dests = {a.dest for a in build_parser()._actions}
    assert set(PAPER_VALUES) <= dests
    # a later session moves defaults away from the paper: --preset paper must not follow them
    changed = {(LossWeights, "lambda_dist"): 0.5, (ObjectiveSettings, "distillation_normalisation"): "element",
               (ContrastiveSettings, "bank_size"): 60, (ContrastiveSettings, "learnable_temperature"): True}
    for (cls, name), value in changed.items():
        monkeypatch.setattr(next(f for f in dataclasses.fields(cls) if f.name == name), "default", value)
    drifted = config_from_args(parse_args(BASE_FLAGS))
    assert (drifted.objective.weights.lambda_dist, drifted.objective.contrastive_settings.bank_size) == (0.5, 60)
    config = config_from_args(parse_args([*BASE_FLAGS, "--preset", "paper"]))
    objective = config.objective
    assert objective.preset_name == "full" and objective.distillation_normalisation == "frame"
    weights = objective.weights
    assert (weights.lambda_rec, weights.lambda_window_rec, weights.lambda_con, weights.lambda_dist) == (1, 1, 1, 1)
    contrastive = objective.contrastive_settings
    assert (contrastive.temperature, contrastive.learnable_temperature, contrastive.bank_size) == (0.07, False, 0)
    assert (config.mining.top_k, config.mining.templates, config.mining_run.mining_encoder) == (
        250, ("a person performs a {label}.",), "clip")
    assert (config.lora.rank, config.lora.alpha, config.lora.dropout) == (16, 32.0, 0.1)
    assert (config.optim.num_steps, config.optim.lr, config.optim.grad_clip, config.data.shots) == (5000, 2e-5, 1.0, 10)
    assert not config.rerank.enabled and not config.prompts.prompt_augmentation and config.teacher_mode == "eval"


def test_paper_preset_yields_to_flags_given():
    from mdm_kinemic.train_fewshot import config_from_args, parse_args

    config = config_from_args(parse_args([*BASE_FLAGS, "--preset", "paper", "--lambda_dist", "0.5", "--no-dww",
                                          "--distillation_normalisation", "authors_broadcast", "--num_steps", "7"]))
    assert config.objective.weights.lambda_dist == 0.5 and not config.objective.dww
    assert config.objective.distillation_normalisation == "authors_broadcast" and config.optim.num_steps == 7


def test_rerank_and_prompt_flags_reach_the_config():
    from mdm_kinemic.train_fewshot import config_from_args, parse_args

    config = config_from_args(parse_args([*BASE_FLAGS, "--kinematic_rerank", "dtw", "--rerank_keep", "0.3",
                                          "--prompt_augmentation", "--templates", "a person {label}.", "one {label}."]))
    assert (config.rerank.kinematic_rerank, config.rerank.rerank_keep) == ("dtw", 0.3)
    assert config.prompts.prompt_augmentation and config.mining.templates == ("a person {label}.", "one {label}.")
    with pytest.raises(ValueError, match="--target_text prompt"):
        config_from_args(parse_args([*BASE_FLAGS, "--prompt_augmentation", "--target_text", "caption"]))


def test_help_gives_every_flag_a_default_or_required():
    from mdm_kinemic.train_fewshot import build_parser

    parser = build_parser()
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert "default" in action.help or "required" in action.help, action.option_strings


def test_smoke_run_outputs(smoke_run):
    run = smoke_run["dir"]
    records = losses(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for key in ("loss", "rec_target", "contrastive", "rec_window", "distillation", "dww_mean",
                "window_start_mean", "window_length_mean"):
        assert all(key in r for r in records), key
    args = json.loads((run / "args.json").read_text())
    section = args["kinemic"]
    assert section["train"]["optim"]["num_steps"] == 4 and section["class_names"] == ["side kick", "wave"]
    assert section["class_prompts"] == ["a person performs a side kick.", "a person performs a wave."]
    upstream_stats = locate_upstream() / "dataset" / "HumanML3D"
    if not (upstream_stats / "Mean.npy").is_file():  # the checkpoint's data folders hold none
        assert section["norm_stats"] == str(HUMANML3D_STATS_DIR)
        assert "using HumanML3D's, shipped in" in smoke_run["stderr"]
    assert args["arch"] == "trans_enc" and args["latent_dim"] == 64
    for step in (2, 4):
        for name in (f"model{step:09d}.pt", f"opt{step:09d}.pt", f"train_state{step:09d}.pt"):
            assert (run / name).is_file(), name
        # the default 3 pictures, spread over the classes: pairs 0 and 2 (one per class), then 1
        pictures = sorted(p.name for p in (run / "mining_pictures").glob(f"step{step:09d}_pair*.png"))
        assert pictures == [f"step{step:09d}_pair{b:02d}.png" for b in (0, 1, 2)]
    report = (run / "mining_report.txt").read_text()
    assert "[0] side kick" in report and "a person kicks to the side with the right leg" in report
    assert json.loads((run / "run_summary.json").read_text())["total_steps"] == 4


def test_checkpoint_holds_only_what_kinemic_trains(smoke_run):
    run = smoke_run["dir"]
    payload = torch.load(run / "model000000004.pt", weights_only=True)
    assert set(payload) == {"kinemic_format", "step", "lora", "action_embedding", "extra"}
    assert all("lora_A" in k or "lora_B" in k for k in payload["lora"])
    assert set(payload["extra"]) == {"mic", "contrastive", "ema"}
    assert payload["action_embedding"].shape == (2, 64)
    trained = (sum(v.numel() for v in payload["lora"].values()) + payload["action_embedding"].numel()
               + sum(v.numel() for v in payload["extra"]["mic"].values()))
    # AdamW state: one exp_avg per trainable tensor, and their sizes add up to exactly what KineMIC trains
    opt = torch.load(run / "opt000000004.pt", weights_only=True)
    moments = [s["exp_avg"] for s in opt["state"].values()]
    assert sum(m.numel() for m in moments) == trained
    ema = payload["extra"]["ema"]
    assert sum(v.numel() for v in ema.values()) == trained


def test_tensorboard_scalars(smoke_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(smoke_run["dir"]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for term in ("loss", "rec_target", "contrastive", "rec_window", "distillation", "dww_mean",
                 "window_start_mean", "window_length_mean"):
        assert f"Loss/{term}" in tags
    assert [e.step for e in events.Scalars("Loss/loss")] == [1, 2, 3, 4]


def test_killed_and_resumed_run_repeats_the_uninterrupted_losses(smoke_run, tmp_path, cli):
    run = tmp_path / "run"
    args = [str(run) if a == str(smoke_run["dir"]) else a for a in smoke_run["args"]]
    process = cli.start("mdm_kinemic.train_fewshot", args, tmp_path / "killed.log")
    # kill -9 as soon as the step-2 checkpoint is complete: during the save's pictures or step 3
    deadline = time.monotonic() + 900
    while not (run / "train_state000000002.pt").is_file():
        assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert not (run / "model000000004.pt").exists(), "the run finished before it could be killed"
    assert [r["step"] for r in losses(run)][:2] == [1, 2]
    result = cli.run("mdm_kinemic.train_fewshot", args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stderr and "(step 2)" in result.stderr
    assert losses(run) == losses(smoke_run["dir"])


def test_save_dir_of_another_run_is_refused(smoke_run, cli):
    result = cli.run("mdm_kinemic.train_fewshot", [*smoke_run["args"], "--lr", "1e-3"], timeout=600)
    assert result.returncode == 2
    assert "belongs to a run with other settings (optim.lr differ)" in result.stderr


def test_kinematic_rerank_and_prompt_augmentation_run(tiny_checkpoint, tiny_data, tmp_path, cli):
    run = tmp_path / "run"
    args = cli_args(tiny_checkpoint, tiny_data, run, tmp_path / "cache", "--num_steps", "2",
                    "--kinematic_rerank", "dtw", "--rerank_keep", "0.5", "--prompt_augmentation",
                    "--templates", "a person performs a {label}.", "someone does a {label}.",
                    "--num_mining_pictures", "0")
    result = cli.run("mdm_kinemic.train_fewshot", args)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run / "kinematic_rerank.json").read_text())
    pool = json.loads((run / "mining_pool.json").read_text())
    for entry, mined in zip(report["classes"], pool["classes"]):
        assert entry["candidates"] == 3 and entry["kept"] == 2 == mined["kept"]  # ceil(0.5 * top-3)
        kept = [p for p in entry["candidates_by_text_rank"] if p["kept"]]
        assert [p["clip_id"] for p in sorted(kept, key=lambda p: p["rank"])] == [p["clip_id"] for p in mined["positives"]]
    assert "| class | candidates" in (run / "kinematic_rerank.md").read_text()
    section = json.loads((run / "args.json").read_text())["kinemic"]
    assert section["class_prompt_sets"] == [["a person performs a side kick.", "someone does a side kick."],
                                            ["a person performs a wave.", "someone does a wave."]]
    assert section["train"]["rerank"]["kinematic_rerank"] == "dtw"
