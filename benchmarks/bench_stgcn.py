"""ST-GCN training cost of the paper's HAR protocol: seconds per epoch and the 5-seed projection.

The paper's training set is 30 real + 1149 synthetic = 1179 clips; PYSKL samples 100 frames per
clip; the NTU-VIBE xsub test split of the three classes holds 1706 clips. A full epoch on CPU takes
minutes, so by default a few batches are timed and the epoch is extrapolated (the output says so);
``--batches 0`` times whole epochs. Costs are measured through the library's own training loop
(``train_stgcn``, ``TrainedSTGCN.embed``), on random-walk joint clips (timing does not depend on
content).

    python benchmarks/bench_stgcn.py                    # CPU, 3 timed batches
    python benchmarks/bench_stgcn.py --device cuda      # where a GPU is lent
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import replace

from _timing import write_json

import numpy as np
import torch

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.preprocess import pre_normalize
from mdm_kinemic.har.protocol import HarProtocol
from mdm_kinemic.har.skeleton import HUMANML3D_22
from mdm_kinemic.har.train import resolve_device, train_stgcn


def random_clips(n: int, frames: int, seed: int, source: str) -> SkeletonClips:
    """n random-walk clips [frames, 22, 3] in 3 classes."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 0.3, (n, 1, 22, 3))
    walk = np.cumsum(rng.normal(0.0, 0.01, (n, frames, 22, 3)), axis=1)
    joints = (base + walk).astype(np.float32)
    return SkeletonClips(list(joints), np.arange(n) % 3, ("a", "b", "c"), [f"{source}{i}" for i in range(n)], source)


def time_batches(clips: SkeletonClips, protocol: HarProtocol, batches: int, device: torch.device) -> tuple[float, float]:
    """(seconds per training batch, seconds per epoch): whole epochs if batches == 0, else the
    difference between a run of 1 + batches batches and a 1-batch run (warm-up excluded), divided
    by batches and scaled to the epoch."""
    per_epoch_batches = math.ceil(len(clips) / protocol.batch_size)
    one = replace_epochs(protocol, 1)
    if batches == 0 or batches + 1 >= per_epoch_batches:
        train_stgcn(clips, one, seed=0, device=device, max_batches=1)
        seconds = train_stgcn(clips, one, seed=0, device=device).train_seconds
        return seconds / per_epoch_batches, seconds
    warm = train_stgcn(clips, one, seed=0, device=device, max_batches=1).train_seconds
    timed = train_stgcn(clips, one, seed=0, device=device, max_batches=1 + batches).train_seconds
    per_batch = max(timed - warm, 0.0) / batches
    return per_batch, per_batch * per_epoch_batches


def replace_epochs(protocol: HarProtocol, epochs: int) -> HarProtocol:
    return replace(protocol, epochs=epochs)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1179, help="training clips (30 real + 1149 synthetic)")
    parser.add_argument("--real_clips", type=int, default=30, help="clips of the real-only baseline")
    parser.add_argument("--test_clips", type=int, default=1706, help="test clips (NTU-VIBE xsub val, 3 classes)")
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument("--batches", type=int, default=3, help="timed training batches (0: whole epochs)")
    parser.add_argument("--embed_clips", type=int, default=64, help="test clips timed for the test-pass estimate")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", default="benchmarks/results/stgcn.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    protocol = HarProtocol(clip_len=args.frames)

    train = random_clips(args.clips, args.frames, 0, "train")
    real = random_clips(args.real_clips, args.frames, 1, "real")
    probe = random_clips(args.embed_clips, args.frames, 2, "test")

    started = time.perf_counter()
    for joints in train.joints:
        pre_normalize(joints, HUMANML3D_22, protocol.prenorm)
    prenorm_s = time.perf_counter() - started

    per_batch_s, epoch_s = time_batches(train, protocol, args.batches, device)
    _, real_epoch_s = time_batches(real, protocol, 0, device)
    recogniser = train_stgcn(probe, replace_epochs(protocol, 1), seed=0, device=device, max_batches=1)
    recogniser.embed(probe)
    started = time.perf_counter()
    recogniser.embed(probe)
    embed_per_clip_s = (time.perf_counter() - started) / len(probe)
    test_pass_s = embed_per_clip_s * args.test_clips

    mixed_seed_s = prenorm_s + args.epochs * epoch_s + test_pass_s
    real_seed_s = args.epochs * real_epoch_s + test_pass_s
    gen_metrics_s = embed_per_clip_s * (args.clips + args.test_clips)
    protocol_s = args.seeds * (mixed_seed_s + real_seed_s) + gen_metrics_s
    tracking_s = 2 * args.seeds * args.epochs * test_pass_s
    extrapolated = args.batches > 0 and args.batches + 1 < math.ceil(args.clips / protocol.batch_size)

    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "setting": {
            "train_clips": args.clips, "real_clips": args.real_clips, "test_clips": args.test_clips,
            "frames": args.frames, "batch_size": protocol.batch_size, "seeds": args.seeds, "epochs": args.epochs,
        },
        "epoch_extrapolated_from_batches": args.batches if extrapolated else None,
        "seconds": {
            "prenorm_all_train_clips": prenorm_s,
            "train_batch_64": per_batch_s,
            "train_epoch_1179": epoch_s,
            "train_epoch_real_only": real_epoch_s,
            "test_pass": test_pass_s,
            "seed_real_plus_synthetic": mixed_seed_s,
            "seed_real_only": real_seed_s,
            "generative_metrics_embedding": gen_metrics_s,
            "protocol_projected": protocol_s,
            "max_over_epochs_tracking_extra": tracking_s,
        },
        "ratios": {
            "test_pass_over_train_epoch": test_pass_s / epoch_s,
            "real_only_epoch_over_mixed_epoch": real_epoch_s / epoch_s,
            "tracking_extra_over_protocol": tracking_s / protocol_s,
        },
    }
    s = result["seconds"]
    how = f"extrapolated from {args.batches} timed batches" if extrapolated else "whole epochs timed"
    rows = [
        ("train batch (64 clips x 100 frames)", s["train_batch_64"]),
        (f"train epoch, {args.clips} clips ({how})", s["train_epoch_1179"]),
        (f"train epoch, real only ({args.real_clips} clips)", s["train_epoch_real_only"]),
        (f"test pass, {args.test_clips} clips (from {args.embed_clips})", s["test_pass"]),
        ("one seed, real + synthetic, all epochs", s["seed_real_plus_synthetic"]),
        ("one seed, real only, all epochs", s["seed_real_only"]),
        (f"full protocol: {args.seeds} seeds x {args.epochs} epochs, both runs + metrics", s["protocol_projected"]),
        ("extra for max-over-epochs tracking (both runs)", s["max_over_epochs_tracking_extra"]),
    ]
    print(f"ST-GCN on {result['device']} ({result['device_name']}, {result['torch_threads']} threads, load {result['load_average_1min']})")
    for name, value in rows:
        print(f"  {name:<72}{value:>12.1f} s{value / 3600:>9.2f} h")
    for name, value in result["ratios"].items():
        print(f"  ratio {name:<66}{value:>12.3f}")
    out = write_json(result, args.out)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
