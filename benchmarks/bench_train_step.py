"""Seconds per KineMIC training step vs plain LoRA fine-tuning vs the passes KineMIC cannot avoid.

    python benchmarks/bench_train_step.py [--out benchmarks/results/train_step.json] [--rounds 3]
        [--classes 3 --shots 10] [--target_frames 64] [--prior_frames 196] [--device cpu]

humanml_trans_enc_512's architecture (trans_enc, 8 layers, latent 512; random weights from
mdm_kinemic.mdm.checkpoints.random_checkpoint, random CLIP), LoRA rank 16 on all layers, B = classes x shots
pairs: targets of 40..target_frames frames, priors of prior_frames/2..prior_frames frames. One
optimizer step each of:

* (a) plain LoRA fine-tuning: L_rec^T only on the targets (Table 2's MDM+LoRA row), backward,
  gradient clipping, AdamW over LoRA + action embedding;
* (b) the full KineMIC step (core/objective.py, Full row): teacher on the priors, MIC on both
  streams, L_con, window mining, student on targets and windows, L_rec^{P*}, L_dist, dww,
  backward, clipping, AdamW over LoRA + action embedding + MIC;
* (c) the passes KineMIC cannot avoid, each timed alone, summed: (c1) student forward+backward
  on the targets, (c2) student forward+backward on target-length windows of the priors, (c3)
  teacher forward without gradient on the priors, (c4) clipping + AdamW over LoRA + action
  embedding;
* (m), for the breakdown of (b) - (c): the MIC module alone, forward+backward on prior-length
  and target-length features (what L_con trains it through) and forward on the windows (dww).

Goal: (b) / (c) <= 1.10 (mining, MIC and bookkeeping add at most 10 %); (b) / (a) is reported
too. CLIP text features are precomputed (in training they come from the text cache). The
variants alternate within each round so that machine load affects all alike; medians are
compared. Peak memory of (a) and (b) is measured in child processes (peak RSS during two steps,
after the setup; peak CUDA memory on a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from _timing import REPO_ROOT, proc_status_mib, timed

from mdm_kinemic.core.denoiser import Condition, frame_mask_from_lengths  # noqa: E402
from mdm_kinemic.core.losses import reconstruction_loss, window_distillation_loss  # noqa: E402
from mdm_kinemic.core.mic import MICModule  # noqa: E402
from mdm_kinemic.core.objective import KineMICBatch, KineMICObjective, ObjectiveSettings  # noqa: E402
from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import start_from_base  # noqa: E402
from mdm_kinemic.mdm.checkpoints.random_checkpoint import (  # noqa: E402
    RandomCheckpointSettings,
    make_random_checkpoint,
)
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings  # noqa: E402
from mdm_kinemic.mdm.model.lora import LoraSettings  # noqa: E402
from mdm_kinemic.mdm.upstream.locate import import_upstream  # noqa: E402

GOAL_RATIO = 1.10
VARIANTS = ("a", "b", "c1", "c2", "c3", "c4", "m")


def build(args: argparse.Namespace) -> dict:
    """The model, the two objectives, a batch and the step functions of every variant."""
    device = torch.device(args.device)
    import_upstream(clip_weights="random")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_random_checkpoint(RandomCheckpointSettings(out=tmp, layers=args.layers, latent_dim=args.latent_dim))
        settings = KineMICModelSettings(num_actions=args.classes)
        loaded = start_from_base(ckpt, settings, LoraSettings(), clip_weights="random", device=device)
    model, diffusion = loaded.model, loaded.diffusion
    model.train()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    size = args.classes * args.shots
    target_lengths = torch.randint(40, args.target_frames + 1, (size,), generator=g)
    prior_lengths = torch.randint(args.prior_frames // 2, args.prior_frames + 1, (size,), generator=g)
    target_lengths[0], prior_lengths[0] = args.target_frames, args.prior_frames
    labels = torch.arange(args.classes).repeat_interleave(args.shots)
    prompts = [f"a person performs action {c}." for c in labels.tolist()]
    captions = [f"source caption {i}" for i in range(size)]
    # CLIP is outside every measurement: the text cache holds the features, as in training
    for text in dict.fromkeys(prompts + captions):
        model.text_cache._store[text] = torch.randn(512, generator=g).to(device)

    def padded(lengths: torch.Tensor, frames: int) -> torch.Tensor:
        x = torch.randn(size, 263, 1, frames, generator=g)
        return x * frame_mask_from_lengths(lengths, frames)[:, None, None, :]

    batch = KineMICBatch(
        x0_target=padded(target_lengths, args.target_frames).to(device), target_lengths=target_lengths.to(device),
        target_action=labels.to(device), target_text=prompts,
        x0_prior=padded(prior_lengths, args.prior_frames).to(device), prior_lengths=prior_lengths.to(device),
        prior_text=captions,
    )
    targets_only = KineMICBatch(batch.x0_target, batch.target_lengths, batch.target_action, prompts)
    full = KineMICObjective(model.student, model.teacher, MICModule(model.latent_dim), diffusion.q_sample,
                            ObjectiveSettings()).to(device)
    lora = KineMICObjective(model.student, model.teacher, MICModule(model.latent_dim), diffusion.q_sample,
                            ObjectiveSettings.preset("mdm_lora")).to(device)
    student_params = model.trainable_parameters()
    full_params = student_params + list(full.mic.parameters())
    opt_lora = torch.optim.AdamW(student_params, lr=2e-5, weight_decay=1e-5)
    opt_full = torch.optim.AdamW(full_params, lr=2e-5, weight_decay=1e-5)
    target_mask = frame_mask_from_lengths(batch.target_lengths, args.target_frames)
    prior_mask = frame_mask_from_lengths(batch.prior_lengths, args.prior_frames)
    window_lengths = torch.minimum(batch.target_lengths, batch.prior_lengths)
    window_mask = frame_mask_from_lengths(window_lengths, args.target_frames)
    cond = Condition(text=prompts, action=batch.target_action,
                     drop_text=torch.zeros(size, dtype=torch.bool, device=device),
                     drop_action=torch.zeros(size, dtype=torch.bool, device=device))

    def timesteps() -> torch.Tensor:
        return torch.randint(0, diffusion.num_timesteps, (size,), device=device)

    def optimise(params, opt) -> None:
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    def step_a() -> None:
        opt_lora.zero_grad(set_to_none=True)
        lora(targets_only, timesteps()).loss.backward()
        optimise(student_params, opt_lora)

    def step_b() -> None:
        opt_full.zero_grad(set_to_none=True)
        full(batch, timesteps()).loss.backward()
        optimise(full_params, opt_full)

    def c1() -> None:
        opt_lora.zero_grad(set_to_none=True)
        t = timesteps()
        x_t = diffusion.q_sample(batch.x0_target, t, torch.randn_like(batch.x0_target))
        out = model.student.denoise(x_t, t, cond, target_mask)
        reconstruction_loss(out.x0, batch.x0_target, target_mask).mean().backward()

    teacher_features = torch.randn(size, args.target_frames, model.latent_dim, device=device)

    def c2() -> None:
        opt_lora.zero_grad(set_to_none=True)
        t = timesteps()
        x0 = batch.x0_prior[..., : args.target_frames]
        x_t = diffusion.q_sample(x0, t, torch.randn_like(x0))
        out = model.student.denoise(x_t, t, cond, window_mask)
        (reconstruction_loss(out.x0, x0, window_mask)
         + window_distillation_loss(out.features, teacher_features, window_mask)).mean().backward()

    def c3() -> None:
        t = timesteps()
        x_t = diffusion.q_sample(batch.x0_prior, t, torch.randn_like(batch.x0_prior))
        model.teacher.denoise(x_t, t, Condition(text=captions), prior_mask)

    def c4() -> None:
        optimise(student_params, opt_lora)

    prior_features = torch.randn(size, args.prior_frames, model.latent_dim, device=device)
    target_features = torch.randn(size, args.target_frames, model.latent_dim, device=device, requires_grad=True)

    def m() -> None:
        opt_full.zero_grad(set_to_none=True)
        z_prior = full.mic(prior_features, prior_mask).z
        z_target = full.mic(target_features, target_mask).z
        (z_prior.square().mean() + z_target.square().mean()).backward()
        with torch.no_grad():
            full.mic(teacher_features, window_mask)

    return {"device": device, "model": model, "size": size, "steps": {
        "a": step_a, "b": step_b, "c1": c1, "c2": c2, "c3": c3, "c4": c4, "m": m}}


def measure_memory(args: argparse.Namespace) -> None:
    """Child process: peak RSS (and CUDA memory) of two steps of one variant, printed as JSON."""
    built = build(args)
    device, step = built["device"], built["steps"][args.measure_memory]
    setup_rss = proc_status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS, to the current RSS
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):
        step()
    out = {"setup_rss_mib": setup_rss, "peak_rss_mib": proc_status_mib("VmHWM")}
    if device.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "train_step.json"), help="JSON result file")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds over all variants (after one warm-up round)")
    p.add_argument("--classes", type=int, default=3, help="target classes (paper: 3)")
    p.add_argument("--shots", type=int, default=10, help="targets per class (paper: 10); B = classes x shots")
    p.add_argument("--target_frames", type=int, default=64, help="longest target (20 fps frames)")
    p.add_argument("--prior_frames", type=int, default=196, help="longest prior (HumanML3D's maximum 196)")
    p.add_argument("--layers", type=int, default=None, help="override the depth (smoke runs only)")
    p.add_argument("--latent_dim", type=int, default=None, help="override the width (smoke runs only)")
    p.add_argument("--device", default="cpu", help="cpu (the goal's setting) or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--no_memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--measure_memory", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.measure_memory:
        measure_memory(args)
        return {}

    built = build(args)
    device, steps = built["device"], built["steps"]
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for round_ in range(args.rounds + 1):
        for variant in VARIANTS:
            elapsed = timed(steps[variant], device)
            if round_:
                times[variant].append(elapsed)
    median = {v: statistics.median(times[v]) for v in VARIANTS}
    unavoidable = median["c1"] + median["c2"] + median["c3"] + median["c4"]
    memory = {}
    if not args.no_memory:
        child = [f"--{k}={v}" for k, v in vars(args).items()
                 if v is not None and k not in ("out", "rounds", "no_memory", "measure_memory")]
        for variant in ("a", "b"):
            run = subprocess.run([sys.executable, __file__, *child, "--measure_memory", variant],
                                 capture_output=True, text=True, check=True)
            memory[variant] = json.loads(run.stdout.strip().splitlines()[-1])
    result = {
        "benchmark": "KineMIC training step vs plain LoRA step vs unavoidable passes",
        "batch_pairs": built["size"],
        "target_frames": args.target_frames,
        "prior_frames": args.prior_frames,
        "layers": built["model"].mdm.num_layers,
        "latent_dim": built["model"].latent_dim,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "seconds": times,
        "median_s": median,
        "unavoidable_s": unavoidable,
        "ratio_b_over_c": median["b"] / unavoidable,
        "ratio_b_over_a": median["b"] / median["a"],
        "mic_share_of_overhead": median["m"] / max(median["b"] - unavoidable, 1e-9),
        "goal_ratio_b_over_c": GOAL_RATIO,
        "meets_goal": median["b"] / unavoidable <= GOAL_RATIO,
        "memory": memory,
        "authors_implementation": "not run: github LuCazzola/KineMIC needs its NTU-VIBE/HumanML3D data loaders, "
                                  "a trained 50-step MDM checkpoint and its own environment",
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    names = {"a": "(a) plain LoRA step", "b": "(b) full KineMIC step", "c1": "(c1) student fwd+bwd, targets",
             "c2": "(c2) student fwd+bwd, windows", "c3": "(c3) teacher fwd, priors", "c4": "(c4) clip + AdamW",
             "m": "(m) MIC module alone"}
    print(f"{'variant':<34}{'median s':>10}{'min s':>10}")
    for v in VARIANTS:
        print(f"{names[v]:<34}{median[v]:>10.3f}{min(times[v]):>10.3f}")
    print(f"{'(c) = c1 + c2 + c3 + c4':<34}{unavoidable:>10.3f}")
    print(f"{'(b) - (c): KineMIC overhead':<34}{median['b'] - unavoidable:>10.3f}   of which the MIC module (m): "
          f"{100 * result['mic_share_of_overhead']:.0f} %")
    verdict = "meets" if result["meets_goal"] else "misses"
    print(f"(b) / (c) = {result['ratio_b_over_c']:.3f} ({verdict} the goal <= {GOAL_RATIO}); "
          f"(b) / (a) = {result['ratio_b_over_a']:.3f}; B={built['size']} pairs, targets <= {args.target_frames}, "
          f"priors <= {args.prior_frames} frames, {result['layers']} layers x {result['latent_dim']}, {device}, "
          f"{result['threads']} threads")
    for variant, mem in memory.items():
        print(f"peak memory {names[variant]}: {mem['peak_rss_mib']:.0f} MiB RSS (after setup {mem['setup_rss_mib']:.0f} MiB)"
              + (f", {mem['peak_cuda_mib']:.0f} MiB CUDA" if "peak_cuda_mib" in mem else ""))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
