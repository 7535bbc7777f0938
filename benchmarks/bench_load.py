"""Checkpoint load-to-first-forward time for humanml_trans_enc_512's architecture.

    python benchmarks/bench_load.py [--out benchmarks/results/load.json] [--clip_weights random]
        [--repeats 3] [--device cpu]

Makes a random checkpoint of the full architecture (8 layers, latent 512) once, then per repeat
times each stage of ``load_upstream_checkpoint`` (resolve + args.json, torch.load, building
upstream's MDM including CLIP, loading the weights) and the first forward (B=1, T=196 frames, one
caption through CLIP), in this process after a warm-up. Ratios are taken against a warm forward
measured in the same run; a cold run in a fresh interpreter (imports included) is timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mdm_kinemic.mdm.checkpoints.random_checkpoint import (
    RandomCheckpointSettings,
    make_random_checkpoint,
)
from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import (
    load_weights,
    read_checkpoint_args,
    read_state_dict,
    resolve_checkpoint,
)
from mdm_kinemic.mdm.model.build import build_upstream_model
from mdm_kinemic.mdm.upstream.locate import import_upstream

FRAMES = 196
CAPTION = "a person walks forward, turns around and sits down."


def _inputs(device: str, text: bool) -> tuple[torch.Tensor, torch.Tensor, dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 263, 1, FRAMES, generator=g).to(device)
    y = {"mask": torch.ones(1, 1, 1, FRAMES, dtype=torch.bool, device=device)}
    if text:
        y["text"] = [CAPTION]
    else:
        y["text_embed"] = torch.randn(1, 1, 512, generator=g).to(device)
    return x, torch.tensor([500], device=device), y


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(stages: dict, name: str, device: str, call, *a, **kw):
    _sync(device)
    start = time.perf_counter()
    result = call(*a, **kw)
    _sync(device)
    stages[name] = time.perf_counter() - start
    return result


def load_once(ckpt_dir: Path, device: str) -> dict[str, float]:
    """One load-to-first-forward, stage by stage (seconds)."""
    stages: dict[str, float] = {}
    path = _timed(stages, "resolve+args", device, resolve_checkpoint, ckpt_dir)
    args = read_checkpoint_args(path)
    state = _timed(stages, "torch.load", device, read_state_dict, path, False)
    model, _ = _timed(stages, "build MDM (+CLIP)", device, build_upstream_model, args)
    _timed(stages, "load weights", device, load_weights, model, state, path)

    def _to_device():
        model.to(device)
        model.eval()

    _timed(stages, "to device", device, _to_device)
    x, t, y = _inputs(device, text=True)
    with torch.no_grad():
        _timed(stages, "first forward (text)", device, model, x, t, y)
        x, t, y = _inputs(device, text=False)
        _timed(stages, "warm forward (cached text)", device, model, x, t, y)
        x, t, y = _inputs(device, text=True)
        _timed(stages, "warm forward (text)", device, model, x, t, y)
    stages["load-to-first-forward"] = sum(
        v for k, v in stages.items() if not k.startswith("warm") and k != "load-to-first-forward"
    )
    return stages


def cold_run(ckpt_dir: Path, clip_weights: str, device: str) -> float:
    """Seconds for a fresh interpreter to import, load and run the first forward."""
    code = (
        f"import sys, torch; sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import load_upstream_checkpoint\n"
        f"m = load_upstream_checkpoint({str(ckpt_dir)!r}, clip_weights={clip_weights!r}, device={device!r}).model\n"
        f"x = torch.randn(1, 263, 1, {FRAMES}, device={device!r})\n"
        f"y = {{'text': [{CAPTION!r}], 'mask': torch.ones(1, 1, 1, {FRAMES}, dtype=torch.bool, device={device!r})}}\n"
        f"with torch.no_grad(): m(x, torch.tensor([500], device={device!r}), y)\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "load.json"))
    parser.add_argument("--clip_weights", default="random", help="CLIP ViT-B/32 weights file or 'random'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mdm_root", default=None)
    args = parser.parse_args(argv)
    clip_weights = args.clip_weights if args.clip_weights == "random" else os.path.abspath(args.clip_weights)
    import_upstream(args.mdm_root, clip_weights=clip_weights)

    with tempfile.TemporaryDirectory() as tmp:
        ckpt_dir = Path(tmp) / "humanml_trans_enc_512"
        make_random_checkpoint(RandomCheckpointSettings(out=str(ckpt_dir), like="humanml_trans_enc_512"))
        load_once(ckpt_dir, args.device)  # warm-up: allocator, CLIP cache, lazy imports
        runs = [load_once(ckpt_dir, args.device) for _ in range(args.repeats)]
        cold = cold_run(ckpt_dir, clip_weights, args.device)
        size_mb = (ckpt_dir / "model000000000.pt").stat().st_size / 2**20

    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    warm = median["warm forward (text)"]
    print(f"humanml_trans_enc_512 architecture, random weights ({size_mb:.1f} MiB), device {args.device}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    print(f"{'stage':32s} {'seconds':>9s} {'x warm fwd':>11s}")
    for name, seconds in median.items():
        print(f"{name:32s} {seconds:9.3f} {seconds / warm:11.2f}")
    print(f"{'cold process (imports included)':32s} {cold:9.3f} {cold / warm:11.2f}")
    result = {
        "benchmark": "load",
        "architecture": "humanml_trans_enc_512 (trans_enc, 8 layers, latent 512, CLIP ViT-B/32 fp16)",
        "device": args.device,
        "clip_weights": clip_weights,
        "frames": FRAMES,
        "checkpoint_mib": size_mb,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "median_seconds": median,
        "cold_process_seconds": cold,
        "ratio_to_warm_forward": {k: v / warm for k, v in {**median, "cold process": cold}.items()},
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=2))
    os.replace(tmp_out, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
