"""Student forward+backward time vs plain MDM forward+backward (goal: ratio <= 1.15, LoRA's own cost).

    python benchmarks/bench_student.py [--out benchmarks/results/student.json] [--iters 3]
        [--batch 60] [--frames 196] [--device cpu] [--threads N]

Both networks have humanml_trans_enc_512's architecture (trans_enc, 8 layers, latent 512, ff 1024,
4 heads; random weights, random CLIP). One training step's compute is timed on the same x_t,
timesteps and CLIP features (precomputed: text encoding is outside both measurements):

* plain: upstream's MDM in train mode, every parameter trainable (as upstream's TrainLoop), loss
  mean(x0^2) backward;
* student: KineMICMDM with LoRA (rank 16, alpha 32, dropout 0.1; attention, feed-forward,
  input/output process, timestep embedding) in train mode, text + action condition with
  per-sample drop masks, loss mean(x0^2) + mean(F^2) backward (adapters and action embedding
  trainable, base frozen).

A third network, the student with LoRA dropout 0 (``--no-ablate_dropout`` skips it), separates
the adapters' matmuls from the cost of their dropout (a Bernoulli mask and two elementwise
products over every adapted layer's input, fwd and bwd), which dominates LoRA's overhead on CPU.

Iterations alternate the networks after one warm-up each, so that machine load affects them
alike; ratios of medians are reported. A 2-core machine needs ~1 min per full-size iteration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from _timing import REPO_ROOT, timed

from mdm_kinemic.core.denoiser import Condition
from mdm_kinemic.mdm.checkpoints.random_checkpoint import (
    RandomCheckpointSettings,
    make_random_checkpoint,
)
from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import read_checkpoint_args
from mdm_kinemic.mdm.model.build import build_upstream_model
from mdm_kinemic.mdm.model.kinemic_mdm import (
    DualStreamMDM,
    KineMICModelSettings,
    build_kinemic_mdm,
)
from mdm_kinemic.mdm.model.lora import LoraSettings
from mdm_kinemic.mdm.upstream.locate import import_upstream

GOAL_RATIO = 1.15
NUM_ACTIONS = 3


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "student.json"), help="JSON result file")
    p.add_argument("--iters", type=int, default=3, help="timed iterations per network (after one warm-up)")
    p.add_argument("--batch", type=int, default=60, help="batch size B (the paper's: 30 targets + 30 priors)")
    p.add_argument("--frames", type=int, default=196, help="frames T (20 fps; HumanML3D's maximum 196)")
    p.add_argument("--layers", type=int, default=None, help="override the depth (smoke runs only)")
    p.add_argument("--latent_dim", type=int, default=None, help="override the width (smoke runs only)")
    p.add_argument("--device", default="cpu", help="cpu (the goal's setting) or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--ablate_dropout", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the student with LoRA dropout 0 (diagnostic)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    import_upstream(clip_weights="random")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_random_checkpoint(
            RandomCheckpointSettings(out=tmp, layers=args.layers, latent_dim=args.latent_dim, seed=0)
        )
        upstream_args = read_checkpoint_args(ckpt)
    torch.manual_seed(0)
    plain, _ = build_upstream_model(upstream_args)
    plain.to(device)
    plain.train()
    base_weights = {k: v for k, v in plain.state_dict().items() if not k.startswith("clip_model.")}
    lora_variants = {"student": LoraSettings()}
    if args.ablate_dropout:
        lora_variants["student_dropout0"] = LoraSettings(dropout=0.0)
    students = {}
    for name, lora in lora_variants.items():
        kinemic = build_kinemic_mdm(upstream_args, KineMICModelSettings(num_actions=NUM_ACTIONS))
        kinemic.load_state_dict(base_weights, strict=False)
        students[name] = DualStreamMDM.from_base(kinemic, KineMICModelSettings(num_actions=NUM_ACTIONS), lora)
        students[name].to(device)
        students[name].train()

    g = torch.Generator().manual_seed(1)
    B, T = args.batch, args.frames
    x_t = torch.randn(B, 263, 1, T, generator=g).to(device)
    timesteps = torch.randint(0, 1000, (B,), generator=g).to(device)
    frame_mask = torch.ones(B, T, dtype=torch.bool, device=device)
    text_embed = torch.randn(1, B, 512, generator=g).to(device)
    texts = [f"caption {i}" for i in range(B)]
    # CLIP is outside the measurement: the students' caches are seeded with the same features
    for student in students.values():
        student.text_cache.add(texts, text_embed[0])
    action = torch.randint(0, NUM_ACTIONS, (B,), generator=g).to(device)
    drop_text = (torch.rand(B, generator=g) < 0.1).to(device)
    drop_action = (torch.rand(B, generator=g) < 0.1).to(device)
    cond = Condition(text=texts, action=action, drop_text=drop_text, drop_action=drop_action)
    y_plain = {"text_embed": text_embed, "mask": frame_mask[:, None, None, :]}

    def plain_step() -> None:
        plain.zero_grad(set_to_none=True)
        plain(x_t, timesteps, dict(y_plain)).square().mean().backward()

    def student_step(student: DualStreamMDM):
        def step() -> None:
            student.zero_grad(set_to_none=True)
            out = student.student.denoise(x_t, timesteps, cond, frame_mask)
            (out.x0.square().mean() + out.features.square().mean()).backward()

        return step

    steps = {"plain": plain_step, **{name: student_step(m) for name, m in students.items()}}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        timed(step, device)
    for _ in range(args.iters):
        for name, step in steps.items():
            times[name].append(timed(step, device))

    medians = {name: statistics.median(v) for name, v in times.items()}
    ratio = medians["student"] / medians["plain"]
    trainable = {"plain": plain, **students}
    result = {
        "benchmark": "student forward+backward vs plain MDM forward+backward",
        "batch": B,
        "frames": T,
        "layers": upstream_args.layers,
        "latent_dim": upstream_args.latent_dim,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "iters": args.iters,
        "times_s": times,
        "median_s": medians,
        "ratio_over_plain": {name: m / medians["plain"] for name, m in medians.items()},
        "ratio_student_over_plain": ratio,
        "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio <= GOAL_RATIO,
        "trainable_params": {
            name: sum(p.numel() for p in m.parameters() if p.requires_grad) for name, m in trainable.items()
        },
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    print(f"{'network':<18}{'median s':>10}{'min s':>10}{'ratio':>8}{'trainable':>14}")
    for name, m in medians.items():
        print(f"{name:<18}{m:>10.3f}{min(times[name]):>10.3f}{m / medians['plain']:>8.3f}"
              f"{result['trainable_params'][name]:>14,}")
    verdict = "meets" if result["meets_goal"] else "misses"
    print(f"ratio student / plain = {ratio:.3f} ({verdict} the goal <= {GOAL_RATIO}); "
          f"B={B}, T={T}, {upstream_args.layers} layers x {upstream_args.latent_dim}, {device}, "
          f"{result['threads']} threads, load average {result['load_average'][0]:.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
