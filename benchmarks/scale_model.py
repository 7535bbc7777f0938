"""A scale model: projected wall time of whole runs from the per-unit costs the other benchmarks measured.

Per-unit costs come from the JSON files of three benchmarks run on one device:

- a KineMIC training step at humanml_trans_enc_512 size, 30 target + 30 prior clips
  (bench_train_step.py: ``median_s.b``);
- a synthesised motion (bench_sampling.py: synth's motions per second, rescaled from its
  diffusion steps to the run's, the network cost being linear in the steps);
- an ST-GCN clip pass in training and in testing at PYSKL's width 64 on 100 frames
  (bench_stgcn.py: a training epoch and a test pass, divided by their clips).

A step's cost is taken as linear in its pairs (train_fewshot's step holds every target and its
soft pair): an NTU-120 step of 1,200 pairs costs 40 measured 30-pair steps (bench_train_step.py's
``batch_pairs``).

Two runs are projected: the paper's Table 1 row (5,000 steps, 3 classes x 383 synthetic
motions, ST-GCN on 30 real + 1,149 synthetic clips for 5 seeds x 80 epochs, tested on the 1,706
NTU-VIBE test clips) and an NTU-120 all-class run (120 classes x 10 shots, 383 motions per
class, 5 seeds x 80 epochs on 1,200 real + 45,960 synthetic clips, tested on NTU-120's 50,919
xsub test clips). On N devices the projection is ideal scaling of what our commands spread
over ranks: the training step's global batch split over N DDP ranks (no communication cost
counted), synthesis sharded over N ranks, ST-GCN seeds over min(N, seeds) ranks. Every figure
is a projection; only the per-unit costs are measured, on the device their files name.

    python benchmarks/scale_model.py                              # the CPU units in benchmarks/results
    python benchmarks/scale_model.py --train_step GPU/train_step.json --sampling GPU/sampling.json \\
        --stgcn GPU/stgcn.json --out GPU/scale_model.json          # units measured with --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from _timing import REPO_ROOT, write_json

RESULTS = REPO_ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Scenario:
    """A whole run: few-shot training, synthesis, ST-GCN evaluation.

    Attributes:
        name: label of the run.
        fewshot_steps: KineMIC training steps.
        pairs_per_step: (target, prior) pairs of a step's global batch: every target of the run.
        motions: synthetic motions sampled.
        diffusion_steps: sampling steps per motion.
        har_train_clips: ST-GCN training clips (real + synthetic).
        har_epochs: ST-GCN epochs per seed.
        har_seeds: ST-GCN seeds.
        har_test_clips: test clips of one seed's final test pass.
    """

    name: str
    fewshot_steps: int
    pairs_per_step: int
    motions: int
    diffusion_steps: int
    har_train_clips: int
    har_epochs: int
    har_seeds: int
    har_test_clips: int


SCENARIOS = (
    Scenario("paper Table 1 row (NTU-VIBE, 3 classes)", 5000, 30, 3 * 383, 50, 30 + 3 * 383, 80, 5, 1706),
    Scenario("NTU-120 all classes (120 x 10 shots)", 5000, 1200, 120 * 383, 50, 120 * 10 + 120 * 383, 80, 5, 50919),
)


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per unit on one device, read from the benchmarks' JSON files."""

    device: str
    step_s: float
    step_pairs: int
    motion_s_per_diffusion_step: float
    stgcn_train_clip_s: float
    stgcn_test_clip_s: float


def read_units(train_step: Path, sampling: Path, stgcn: Path) -> UnitCosts:
    """The per-unit costs of the three benchmark files.

    Raises:
        KeyError, FileNotFoundError: a file that is not the named benchmark's output.
    """
    step = json.loads(train_step.read_text())
    sample = json.loads(sampling.read_text())
    har = json.loads(stgcn.read_text())
    train_clips = har["setting"]["train_clips"]
    return UnitCosts(
        device=step["device"],
        step_s=step["median_s"]["b"],
        step_pairs=step["batch_pairs"],
        motion_s_per_diffusion_step=1.0 / sample["routes"]["synth"]["motions_per_second"] / sample["config"]["steps"],
        stgcn_train_clip_s=har["seconds"]["train_epoch_1179"] / train_clips,
        stgcn_test_clip_s=har["seconds"]["test_pass"] / har["setting"]["test_clips"],
    )


def project(scenario: Scenario, units: UnitCosts, devices: int) -> dict[str, float]:
    """Hours of each stage and in total of ``scenario`` on ``devices`` devices (ideal scaling, module doc)."""
    training = scenario.fewshot_steps * units.step_s * scenario.pairs_per_step / units.step_pairs / devices
    sampling = scenario.motions * scenario.diffusion_steps * units.motion_s_per_diffusion_step / devices
    seed = scenario.har_epochs * scenario.har_train_clips * units.stgcn_train_clip_s + scenario.har_test_clips * units.stgcn_test_clip_s
    har = math.ceil(scenario.har_seeds / min(devices, scenario.har_seeds)) * seed
    hours = {"training_h": training / 3600, "sampling_h": sampling / 3600, "har_h": har / 3600}
    return {**hours, "total_h": sum(hours.values())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train_step", type=Path, default=RESULTS / "train_step.json")
    p.add_argument("--sampling", type=Path, default=RESULTS / "sampling.json")
    p.add_argument("--stgcn", type=Path, default=RESULTS / "stgcn.json")
    p.add_argument("--devices", type=int, nargs="+", default=[1, 8], help="device counts to project (default: 1 8)")
    p.add_argument("--out", type=Path, default=RESULTS / "scale_model.json")
    args = p.parse_args()
    units = read_units(args.train_step, args.sampling, args.stgcn)
    rows = [{"scenario": s.name, "devices": n, **project(s, units, n)} for s in SCENARIOS for n in args.devices]
    print(f"units measured on {units.device}: step {units.step_s:.2f} s, motion {units.motion_s_per_diffusion_step:.3f} s "
          f"per diffusion step, ST-GCN clip {units.stgcn_train_clip_s:.3f} s (train) / {units.stgcn_test_clip_s:.3f} s (test)")
    print(f"{'scenario':<42} {'devices':>7} {'training h':>10} {'sampling h':>10} {'HAR h':>9} {'total h':>9}")
    for r in rows:
        print(f"{r['scenario']:<42} {r['devices']:>7} {r['training_h']:>10.1f} {r['sampling_h']:>10.1f} {r['har_h']:>9.1f} {r['total_h']:>9.1f}")
    loads = {k: json.loads(getattr(args, k).read_text()).get("load_average_1min", json.loads(getattr(args, k).read_text()).get("load_average"))
             for k in ("train_step", "sampling", "stgcn")}
    write_json({
        "units": asdict(units),
        "load_average_when_measured": loads,
        "unit_files": {k: str(getattr(args, k).resolve().relative_to(REPO_ROOT)) if getattr(args, k).resolve().is_relative_to(REPO_ROOT)
                       else getattr(args, k).name for k in ("train_step", "sampling", "stgcn")},
        "scenarios": [asdict(s) for s in SCENARIOS],
        "scaling": "ideal: training steps' global batch over N DDP ranks (no communication counted), synthesis "
                   "sharded over N ranks, ST-GCN seeds over min(N, seeds) ranks; every figure is a projection",
        "rows": rows,
    }, args.out)


if __name__ == "__main__":
    main()
