"""Sampling speed: mdm_kinemic.synth against upstream's sample/generate.py, and the sampler's overhead.

    python benchmarks/bench_sampling.py [--motions 16 --frames 60 --steps 20] [--out benchmarks/results/sampling.json]

One run, one machine, one checkpoint: a KineMIC student on humanml_trans_enc_512's architecture
(random weights from mdm.random_checkpoint, its args.json set to --steps diffusion steps, LoRA
rank 16), CLIP random. The same number of motions of one action at one length is drawn by

* upstream's generate.py as upstream runs it: patches/ applied to a copy of the pinned upstream
  (its own ClassifierFreeSampleModel: two passes per step; it renders an mp4 of every motion);
* upstream's generate.py through python -m mdm_kinemic.run (guidance in one batch, rendering kept);
* python -m mdm_kinemic.synth (guidance in one batch, no rendering, files in HumanML3D layout),

each in its own process, timed from start to exit (model loading included), with its peak
resident memory (CPU) read from the process's rusage. Goal: synth >= 1.5x upstream's motions/s.

Then, in this process, the sampler's overhead: the time of GuidedSampler drawing the motions
against the time of the bare network passes that sampling needs (steps x one forward of 2 x
motions rows), fastest of three alternating rounds over 5 respaced steps. Goal: <= 20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO / "third_party" / "motion-diffusion-model"
SHARED = Path(os.environ.get("MDM_KINEMIC_SHARED_DATA", REPO.parent / "shared" / "data"))


def make_student(work: Path, steps: int, layers: int, latent_dim: int) -> Path:
    """A KineMIC checkpoint folder on a random humanml_trans_enc_512-like base with ``steps`` steps."""
    import numpy as np
    import torch

    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        save_kinemic_checkpoint,
        start_from_base,
    )
    from mdm_kinemic.mdm.checkpoints.random_checkpoint import (
        RandomCheckpointSettings,
        make_random_checkpoint,
    )
    from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
    from mdm_kinemic.mdm.model.lora import LoraSettings
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream(clip_weights="random")
    base = make_random_checkpoint(RandomCheckpointSettings(out=str(work / "base"), layers=layers, latent_dim=latent_dim))
    args_path = base.parent / "args.json"
    args = json.loads(args_path.read_text())
    args["diffusion_steps"] = steps
    args_path.write_text(json.dumps(args, indent=4, sort_keys=True))
    settings = KineMICModelSettings(num_actions=3, class_names=("run on the spot", "side kick", "stretch oneself"))
    loaded = start_from_base(base, settings, LoraSettings())
    with torch.no_grad():
        for name, param in loaded.model.network.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    path = save_kinemic_checkpoint(work / "kinemic", 1, loaded.model)
    for name in ("Mean.npy", "Std.npy"):
        source = SHARED / "humanml3d" / name
        if source.is_file():
            shutil.copy(source, path.parent / name)
        else:
            np.save(path.parent / name, np.zeros(263, np.float32) if name == "Mean.npy" else np.ones(263, np.float32))
    return path


def _high_water_mib(pid: int) -> float:
    """VmHWM of a running process (its peak resident memory so far; Linux), 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed_process(command: list[str], cwd: Path, env: dict) -> dict:
    """Run a command; wall seconds and its peak resident memory (MiB), polled from /proc.

    rusage's ru_maxrss would not do: a child's counter starts from this process's size at fork.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _high_water_mib(process.pid))
        try:
            process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    seconds = time.perf_counter() - start
    stderr = process.stderr.read()
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak_rss_mib": peak}


def sampler_overhead(model_path: Path, motions: int, frames: int, device: str, steps: int = 5, rounds: int = 3) -> dict:
    """Seconds of GuidedSampler drawing ``motions`` motions over ``steps`` (respaced) steps against
    the ``steps`` bare network passes of 2 x motions rows it needs; rounds alternate the two and
    the fastest of each counts (other load on the machine only ever adds time)."""
    import torch

    from mdm_kinemic.mdm.sampling.sampler import (
        BatchedGuidance,
        GuidedSampler,
        respaced_diffusion,
    )
    from mdm_kinemic.mdm.sampling.student import load_student

    loaded = load_student(model_path, clip_weights="random", device=device)
    model = loaded.model
    diffusion = respaced_diffusion(loaded.args, str(steps))
    sampler = GuidedSampler(BatchedGuidance(model, 2.5), diffusion, "ddpm", torch.device(device))
    text = model.prompt_features()[torch.zeros(motions, dtype=torch.long)]
    action = torch.zeros(motions, dtype=torch.long)
    x = torch.randn(2 * motions, 263, 1, frames, device=device)
    drop = torch.arange(2 * motions, device=device) >= motions
    y = {"text_embed": torch.cat([text, text])[None].to(device), "action": torch.cat([action, action]).to(device),
         "drop_text": drop, "drop_action": drop}

    def timed(run) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def network_passes():
        for i in reversed(range(steps)):
            model.network(x, torch.full((2 * motions,), i, device=device), y)

    sampler.sample(text[:1], action[:1], frames, [0])  # warm-up
    sampling, network = [], []
    for _ in range(rounds):
        sampling.append(timed(lambda: sampler.sample(text, action, frames, list(range(motions)))))
        network.append(timed(network_passes))
    return {"sampling_seconds": min(sampling), "network_seconds": min(network), "steps": steps, "rounds": rounds,
            "overhead": min(sampling) / min(network) - 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--motions", type=int, default=16, help="motions drawn by each route")
    parser.add_argument("--frames", type=int, default=60, help="frames per motion (20 fps)")
    parser.add_argument("--steps", type=int, default=20, help="diffusion steps of the checkpoint")
    parser.add_argument("--layers", type=int, default=8, help="transformer layers (humanml_trans_enc_512: 8)")
    parser.add_argument("--latent_dim", type=int, default=512, help="latent width (humanml_trans_enc_512: 512)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sampling.json"))
    args = parser.parse_args(argv)
    if args.frames % 20:
        parser.error("--frames must be a multiple of 20 (generate.py takes --motion_length in seconds)")
    sys.path.insert(0, str(REPO))
    work = Path(tempfile.mkdtemp(prefix="bench_sampling_"))
    try:
        model_path = make_student(work, args.steps, args.layers, args.latent_dim)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   MDM_KINEMIC_CLIP_WEIGHTS="random", MPLBACKEND="Agg")
        device_id = "0" if args.device.startswith("cuda") else "-1"
        generate = ["--kinemic", "--model_path", str(model_path), "--action_index", "0", "--num_samples",
                    str(args.motions), "--num_repetitions", "1", "--motion_length", str(args.frames / 20),
                    "--device", device_id]
        patched = work / "upstream"
        shutil.copytree(UPSTREAM, patched, ignore=shutil.ignore_patterns(".git", "assets", "__pycache__"))
        for patch in sorted((REPO / "patches").glob("0*.patch")):
            subprocess.run(["git", "apply", str(patch)], cwd=patched, check=True)
        routes = {
            "upstream_generate": timed_process(
                [sys.executable, "-m", "sample.generate", *generate, "--output_dir", str(work / "g1")], patched,
                dict(env, MDM_MODEL_PLUGINS="mdm_kinemic.mdm.sampling.plugin:PLUGIN")),
            "runner_generate": timed_process(
                [sys.executable, "-m", "mdm_kinemic.run", "sample.generate", *generate, "--output_dir",
                 str(work / "g2")], work, env),
            "synth": timed_process(
                [sys.executable, "-m", "mdm_kinemic.synth", "--model_path", str(model_path), "--per_class",
                 str(args.motions), "--actions", "0", "--length_frames", str(args.frames), "--out",
                 str(work / "s"), "--no-progress", "--device", args.device], work, env),
        }
        for result in routes.values():
            result["motions_per_second"] = args.motions / result["seconds"]
        overhead = sampler_overhead(model_path, args.motions, args.frames, args.device)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "config": {**vars(args), "checkpoint": f"random humanml_trans_enc_512 architecture ({args.layers} layers, "
                                               f"latent {args.latent_dim}), LoRA rank 16, CLIP random"},
        "routes": routes,
        "synth_speedup_vs_upstream_generate": routes["synth"]["motions_per_second"]
        / routes["upstream_generate"]["motions_per_second"],
        "sampler": overhead,
    }
    print(f"{'route':20s} {'seconds':>9s} {'motions/s':>10s} {'peak RSS MiB':>13s}")
    for name, r in routes.items():
        print(f"{name:20s} {r['seconds']:9.1f} {r['motions_per_second']:10.3f} {r['peak_rss_mib']:13.0f}")
    print(f"synth / upstream generate motions/s: {report['synth_speedup_vs_upstream_generate']:.2f}x (goal >= 1.5)")
    print(f"sampler {overhead['sampling_seconds']:.1f} s vs network passes {overhead['network_seconds']:.1f} s: "
          f"overhead {100 * overhead['overhead']:.1f} % (goal <= 20 %)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
