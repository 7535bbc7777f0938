"""The calibration study of KineMIC on a benchmark split's validation clips: ``python -m mdm_kinemic.bench.calibrate``.

    python -m mdm_kinemic.bench.calibrate --bench OUT/default [--factors eq5_scale lambda_dist ...] \\
        [--seeds 3] [--preset cpu] [--jobs 2] [--devices cuda:0,cuda:1]

``--bench`` is one split's folder of ``mdm_kinemic.bench.bandai`` (OUT with one target list,
OUT/NAME with several) after its teacher stage: the study reuses its teacher, source, target
clips and fixed evaluator (training the evaluator, the benchmark's own command, when the har
stage has not), and never reads its test split to score a configuration (the evaluator's own
record holds its test accuracy, which no choice reads). Factor by factor, each level changes one
setting of KineMIC Full (the baseline, at the preset's sizes) and trains it with every few-shot
seed; MDM + LoRA, trained with the same seeds, is the reference. Each run is few-shot training,
sampling and HAR (the preset's protocol, the same recogniser seeds for every run), scored on
``target/val``: a seeded fifth per class of the clips that are neither shots nor test, which
the fixed evaluator never trains on (bench/split.py). One interaction is tested, L_dist x dww
(``terms=base`` turns both off, Table 2's Base); every other level changes one setting of the
baseline. A level that changes how any generator is used or trained rather than KineMIC alone
(the synthetic share, the guidance scale, the longer few-shot schedule) is run for MDM + LoRA
too (``mdm_lora@FACTOR=LEVEL``), and Full is paired with it at the same level.

Each command is skipped when its outputs exist, so running the study again resumes it; the
runs are in OUT/calibration/CONFIG/seedS/{fewshot,synth,har} (a level that only changes
sampling, such as the guidance scale or the synthetic share, samples its method's few-shot
runs), their logs in OUT/logs/, and OUT/calibration/study.json + study.md hold, per
configuration, the validation balanced accuracy over few-shot seeds x recogniser seeds, FID
under the fixed evaluator, and the paired difference to MDM + LoRA and to real only
(bench/summary.py's figures) and, for a level of KineMIC, to the baseline. Studies of several
splits pool with ``python -m mdm_kinemic.bench.pooled_study``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdm_kinemic.bench.commands import stopping_commands
from mdm_kinemic.bench.folder_lock import STUDY_LOCK, FolderBusy, holding
from mdm_kinemic.bench.pool import add_runner_arguments, parse_devices
from mdm_kinemic.bench.presets import PRESETS, BenchPreset, get_preset
from mdm_kinemic.bench.split import FEWSHOT_ID, PROMPT_TEMPLATE, SPLIT_FILE, SplitSettings
from mdm_kinemic.bench.stages import (
    MODEL_FILE,
    STAGE_SECONDS,
    STATUS_FILE,
    Bench,
    StageError,
    latest_step,
    read_status,
    synthetic_set_done,
)
from mdm_kinemic.bench.summary import MDM_LORA, REAL_ONLY, method_entry
from mdm_kinemic.har.paired import format_paired, paired_runs
from mdm_kinemic.har.report import write_record
from mdm_kinemic.har.stats import summarize_seeds

log = logging.getLogger(__name__)

STUDY_DIR = "calibration"
STUDY_FILE = "study"
#: the configuration every factor's levels change one setting of
BASELINE = "full"
#: the validation split of the benchmark's target folder (bench/split.py)
VAL_SPLIT = "val"
#: study.json's key of the paired difference to MDM + LoRA at the same level (Level.with_reference)
PAIRED_AT_LEVEL = "paired_vs_mdm_lora_at_level"
#: a KineMIC level minus the baseline (Full at the defaults): the evidence a default moves on
PAIRED_VS_BASELINE = "paired_vs_baseline"
#: templates of the prompt-augmentation level: the benchmark's own first
AUGMENTED_TEMPLATES = (PROMPT_TEMPLATE, "someone {label}.", "a human {label}.", "the person {label}.", "a man {label}.")


@dataclass(frozen=True)
class Level:
    """One setting of a factor: what it adds to the baseline's commands.

    Attributes:
        name: the level's name in study.json.
        fewshot_args: flags added to ``mdm_kinemic.train_fewshot`` (after the baseline's).
        synth_args: flags added to ``mdm_kinemic.synth``.
        teacher_share: the teacher checkpoint, as a share of its steps (1.0: the latest).
        per_class: synthetic motions per class (None: the preset's).
        with_reference: the level changes how any generator is used (sampling, the recogniser's
            training data) or trained (its few-shot schedule) rather than KineMIC alone, so MDM +
            LoRA is run at it too (``mdm_lora@FACTOR=LEVEL``), and the baseline's level is also
            paired with the reference at the same level.
    """

    name: str
    fewshot_args: tuple[str, ...] = ()
    synth_args: tuple[str, ...] = ()
    teacher_share: float = 1.0
    per_class: int | None = None
    with_reference: bool = False


def factors(preset: BenchPreset) -> dict[str, tuple[Level, ...]]:
    """The study's factors and their levels other than the baseline's (issue 19's list, plus dww,
    which the default split's Table 2 puts beside L_dist among the terms that cost accuracy; Table
    2's Base, without either term, which completes the one interaction studied, L_dist x dww; and
    the synthetic share, which the first parts' validation figures point at: real only led).

    The synthetic share (a half and a quarter of the preset's clips per class) and the guidance
    scale are sampled for KineMIC Full and for MDM + LoRA alike. The few-shot schedule keeps the
    preset's steps x learning rate at twice or half the preset's, the longer one trained for both
    methods; the teacher's strength is its checkpoint at half its steps (the teacher stage saves
    every quarter).
    """
    steps, lr = preset.fewshot_steps, preset.fewshot_lr
    return {
        "eq5_scale": (Level("element", ("--distillation_normalisation", "element")),
                      Level("authors_broadcast", ("--distillation_normalisation", "authors_broadcast"))),
        "lambda_dist": (Level("0.1", ("--lambda_dist", "0.1")), Level("0", ("--no-distillation",))),
        "dww": (Level("off", ("--no-dww",)),),
        # Table 2's Base: with lambda_dist=0 (Table 2's + dww) and dww=off (+ L_dist), the 2 x 2 of the two terms
        "terms": (Level("base", ("--no-distillation", "--no-dww")),),
        "action_init": (Level("randn", ("--action_init", "randn")),),
        # the longer schedule led the baseline; it is a lead over MDM + LoRA only if the reference,
        # trained as long, does not gain as much
        "fewshot_schedule": (Level(f"{2 * steps}x{lr:g}", ("--num_steps", str(2 * steps)), with_reference=True),
                             Level(f"{steps}x{lr / 2:g}", ("--lr", f"{lr / 2:g}"))),
        "guidance": (Level("1.0", synth_args=("--guidance_param", "1.0"), with_reference=True),
                     Level("5.0", synth_args=("--guidance_param", "5.0"), with_reference=True)),
        "teacher_strength": (Level("half_steps", teacher_share=0.5),),
        "kinematic_rerank": (Level("dtw", ("--kinematic_rerank", "dtw")),
                             Level("activity", ("--kinematic_rerank", "activity"))),
        "prompt_augmentation": (Level("templates", ("--prompt_augmentation", "--templates", *AUGMENTED_TEMPLATES),
                                      ("--prompt_augmentation",)),),
        "synthetic_share": tuple(Level(str(n), per_class=n, with_reference=True)
                                 for n in (preset.per_class // 2, preset.per_class // 4)),
    }


@dataclass(frozen=True)
class Config:
    """One trained configuration: the baseline, the reference or one factor's level."""

    name: str
    preset: str
    factor: str | None
    level: Level

    @property
    def reuses_fewshot(self) -> bool:
        """True when only sampling changes: the level samples its method's few-shot runs
        (the baseline's, or the reference's for ``mdm_lora@...``)."""
        return self.factor is not None and not self.level.fewshot_args and self.level.teacher_share >= 1.0

    @property
    def settings(self) -> dict:
        """What the configuration changes, as recorded in study.json."""
        return {"preset": self.preset, "factor": self.factor, "level": self.level.name,
                "fewshot_args": list(self.level.fewshot_args), "synth_args": list(self.level.synth_args),
                "teacher_share": self.level.teacher_share, "per_class": self.level.per_class}


def plan(preset: BenchPreset, chosen: Sequence[str]) -> list[Config]:
    """The configurations to train: MDM + LoRA, the baseline, then each chosen factor's levels.

    Raises:
        ValueError: an unknown factor (the message lists them) or one named twice.
    """
    table = factors(preset)
    unknown = [f for f in chosen if f not in table]
    if unknown:
        raise ValueError(f"unknown factor(s) {unknown}; choose from {', '.join(table)}")
    repeated = sorted({f for f in chosen if list(chosen).count(f) > 1})
    if repeated:  # its commands would run twice at once into the same folders
        raise ValueError(f"factor(s) {repeated} named more than once: name each once")
    configs = [Config(MDM_LORA, MDM_LORA, None, Level("reference")), Config(BASELINE, BASELINE, None, Level("baseline"))]
    for factor in chosen:
        for level in table[factor]:
            configs.append(Config(f"{factor}={level.name}", BASELINE, factor, level))
            if level.with_reference:
                configs.append(Config(reference_name(factor, level), MDM_LORA, factor, level))
    return configs


def reference_name(factor: str, level: Level) -> str:
    """The name of MDM + LoRA at a level that applies to both methods."""
    return reference_of(f"{factor}={level.name}")


def reference_of(config_name: str) -> str:
    """MDM + LoRA's configuration at the level of KineMIC's ``config_name`` ("guidance=1.0" ->
    "mdm_lora@guidance=1.0")."""
    return f"{MDM_LORA}@{config_name}"


def teacher_checkpoint(teacher_dir: Path, share: float) -> Path:
    """The teacher checkpoint nearest below ``share`` of its latest step (the latest for 1.0).

    Raises:
        FileNotFoundError: no teacher checkpoint in ``teacher_dir``.
    """
    last, latest = latest_step(teacher_dir)
    if latest is None:
        raise FileNotFoundError(f"{teacher_dir}: no teacher checkpoint; run the benchmark's teacher stage first")
    if share >= 1.0:
        return latest
    steps = sorted(int(m.group(1)) for p in teacher_dir.iterdir() if (m := MODEL_FILE.match(p.name)))
    below = [s for s in steps if 0 < s <= share * last]
    if not below:
        raise FileNotFoundError(f"{teacher_dir}: no checkpoint at or below {share:g} x step {last}")
    return teacher_dir / f"model{below[-1]:09d}.pt"


def merge_seeds(runs: Sequence[dict]) -> dict:
    """One run of har_results.json from the runs of several few-shot seeds, their recogniser seeds side by side.

    The merged run's seeds are "FEWSHOT:RECOGNISER" labels and ``seed_groups`` their few-shot
    seed; paired comparisons (har/paired.py) pair each few-shot seed's recogniser seeds with the
    reference's and resample few-shot seeds first, then recogniser seeds within them.

    Raises:
        ValueError: no runs, or runs tested on other clips or classes.
    """
    if not runs:
        raise ValueError("merge_seeds needs at least one run")
    first = runs[0]
    for run in runs[1:]:
        for key in ("test_ids", "classes"):
            if list(run[key]) != list(first[key]):
                raise ValueError(f"runs differ in {key}: every run must be tested on the same clips")
    balanced = [v for run in runs for v in run["balanced_accuracy_final_epoch"]["values"]]
    top1 = [v for run in runs for v in run["top1_final_epoch"]["values"]]
    return {
        "classes": first["classes"],
        "test_ids": first["test_ids"],
        "test_labels": first["test_labels"],
        "seeds": [f"{f}:{s}" for f, run in enumerate(runs) for s in run["seeds"]],
        "seed_groups": [f for f, run in enumerate(runs) for _ in run["seeds"]],
        "test_predictions_per_seed": [p for run in runs for p in run["test_predictions_per_seed"]],
        "converged_per_seed": None if any(run.get("converged_per_seed") is None for run in runs)
        else [c for run in runs for c in run["converged_per_seed"]],
        "balanced_accuracy_final_epoch": summarize_seeds(balanced).to_dict(),
        "top1_final_epoch": summarize_seeds(top1).to_dict(),
    }


def study_summary(configs: Sequence[Config], runs: Mapping[str, Sequence[dict]], fids: Mapping[str, Sequence[float | None]],
                  real_only: dict | None) -> dict:
    """study.json: every configuration with all its seeds' runs, paired with MDM + LoRA and real only.

    Args:
        configs: the plan.
        runs: {config name: its seeds' ``real_plus_synthetic`` runs, in seed order}; configs
            without every seed are left out.
        fids: {config name: FID of each seed's synthetic set under the fixed evaluator}.
        real_only: the real-only run on the validation clips (None: not trained yet).
    """
    merged = {c.name: merge_seeds(runs[c.name]) for c in configs if c.name in runs}
    if real_only is not None and runs:
        merged[REAL_ONLY] = merge_seeds([real_only] * len(next(iter(runs.values()))))
    entries: dict = {}
    for config in configs:
        if config.name not in merged:
            continue
        values = [f for f in fids.get(config.name, ()) if f is not None]
        run = merged[config.name]
        entries[config.name] = {**config.settings, **method_entry(config.name, run, merged),
                                "balanced_per_run": dict(zip(run["seeds"], run["balanced_accuracy_final_epoch"]["values"])),
                                "fid_mean": float(np.mean(values)) if values else None, "fid_per_seed": list(fids.get(config.name, ()))}
        if config.factor and config.preset == BASELINE and BASELINE in merged:
            entries[config.name][PAIRED_VS_BASELINE] = paired_runs(run, merged[BASELINE]).to_summary()
        same_level = reference_name(config.factor, config.level) if config.factor else None
        if config.preset == BASELINE and config.level.with_reference and same_level in merged:
            entries[config.name][PAIRED_AT_LEVEL] = paired_runs(run, merged[same_level]).to_summary()
    if real_only is not None:  # its own figures over its own seeds; the copies above only pair
        entries[REAL_ONLY] = {"preset": None, "factor": None, "level": "reference",
                              **method_entry(REAL_ONLY, real_only, merged), "fid_mean": None, "fid_per_seed": []}
    best: dict = {}
    for factor in dict.fromkeys(c.factor for c in configs if c.factor):
        candidates = [c.name for c in configs if (c.factor == factor and c.preset == BASELINE) or c.name == BASELINE]
        scored = [(entries[n]["balanced_median"], n == BASELINE, n) for n in candidates if n in entries]
        if scored:
            best[factor] = max(scored)[2]  # ties keep the baseline
    return {
        "evaluated_on": f"target/{VAL_SPLIT} (never test)",
        "configs": entries,
        "best_per_factor": best,
        "untested_interactions": "every level changes one setting of the baseline but terms=base (L_dist and dww off "
        "together, Table 2's Base); no other pair of factors was trained together",
        PAIRED_VS_BASELINE: "for a level of KineMIC: the level minus the baseline (KineMIC Full at the defaults)",
        PAIRED_AT_LEVEL: "for a level applied to both methods (mdm_lora@FACTOR=LEVEL): KineMIC Full at the level "
        "minus MDM + LoRA at the same level",
        "balanced_per_run": "each run's balanced accuracy, keyed FEWSHOT_SEED:RECOGNISER_SEED",
        "units": "balanced accuracy (mean per-class recall) and top-1 in % over few-shot seeds x recogniser seeds; "
        "paired differences in points, configuration minus reference, 95 % bootstrap interval",
    }


def study_markdown(summary: dict) -> str:
    """study.md: one row per configuration."""
    lines = [
        f"Calibration study on {summary['evaluated_on']}; {summary['untested_interactions']}.",
        "",
        "| configuration | balanced median | mean ± std | Δ vs MDM + LoRA [95 % CI] | Δ vs real only [95 % CI] "
        "| Δ vs baseline [95 % CI] | FID | converged |",
        "|---|---|---|---|---|---|---|---|",
    ]

    for name, e in summary["configs"].items():
        fid = "–" if e["fid_mean"] is None else f"{e['fid_mean']:.3f}"
        converged = "not checked" if e["converged_seeds"] is None else f"{len(e['converged_seeds'])}/{len(e['seeds'])}"
        lines.append(f"| {name} | {e['balanced_median']:.2f} | {e['balanced_mean']:.2f} ± {e['balanced_std']:.2f} | "
                     f"{format_paired(e.get('paired_vs_mdm_lora'))} | {format_paired(e.get('paired_vs_real_only'))} | "
                     f"{format_paired(e.get(PAIRED_VS_BASELINE))} | {fid} | {converged} |")
    at_level = [f"{name}: {format_paired(e[PAIRED_AT_LEVEL])}" for name, e in summary["configs"].items() if e.get(PAIRED_AT_LEVEL)]
    if at_level:
        lines += ["", "KineMIC Full minus MDM + LoRA at the same level [95 % CI]: " + "; ".join(at_level)]
    if summary["best_per_factor"]:  # none when the study ran the two methods only
        lines += ["", "Best level per factor (validation balanced median; ties keep the baseline): "
                  + ", ".join(f"{f}: {n}" for f, n in summary["best_per_factor"].items())]
    return "\n".join(lines) + "\n"


class Study:
    """The study's commands on one benchmark split, through the split's Bench (its paths, pool and logs)."""

    def __init__(self, bench: Bench, configs: Sequence[Config], seeds: int) -> None:
        self.bench = bench
        self.configs = list(configs)
        self.seeds = seeds
        self.root = bench.out / STUDY_DIR
        # the study's compute is not the benchmark's: its commands' seconds go to the study's folder
        bench.seconds_file = f"{STUDY_DIR}/{STAGE_SECONDS}"

    def run_dir(self, config: Config, seed: int) -> Path:
        """OUT/calibration/CONFIG/seedS: the run's fewshot/, synth/ and har/."""
        return self.root / config.name / f"seed{seed}"

    def fewshot_dir(self, config: Config, seed: int) -> Path:
        """The few-shot run a configuration samples: its own, or its method's (baseline or reference)
        when only sampling changes."""
        owner = next(c for c in self.configs if c.name == config.preset) if config.reuses_fewshot else config
        return self.run_dir(owner, seed) / "fewshot"

    def _steps(self, config: Config) -> int:
        args = config.level.fewshot_args
        return int(args[args.index("--num_steps") + 1]) if "--num_steps" in args else self.bench.preset.fewshot_steps

    def _each(self, done: Callable[[Config, int], bool]) -> list[tuple[Config, int]]:
        return [(c, s) for c in self.configs for s in range(self.seeds) if not done(c, s)]

    def fewshot_done(self, config: Config, seed: int) -> bool:
        """True when the few-shot run it samples holds a checkpoint at its number of steps."""
        return latest_step(self.fewshot_dir(config, seed))[0] >= self._steps(config)

    def per_class(self, config: Config) -> int:
        """Synthetic motions per class of a configuration: its level's, else the preset's."""
        return config.level.per_class or self.bench.preset.per_class

    def synth_done(self, config: Config, seed: int) -> bool:
        """True when its synth/ holds per_class x classes motions sampled from the latest
        checkpoint of the few-shot run it samples."""
        clips = self.per_class(config) * self.bench.n_classes()
        return synthetic_set_done(self.run_dir(config, seed) / "synth", clips, latest_step(self.fewshot_dir(config, seed))[1])

    def _fail_stale(self, stage: str) -> list[tuple[Config, int]]:
        """Fail every synthetic set drawn from an older checkpoint of its few-shot run; returns them."""
        return self.bench.fail_stale_sets({
            (c, s): (f"calibration-{c.name}-seed{s}-{stage}", self.run_dir(c, s) / "synth", self.run_dir(c, s) / "har",
                     latest_step(self.fewshot_dir(c, s))[1])
            for c in self.configs for s in range(self.seeds)})

    def har_done(self, config: Config, seed: int) -> bool:
        """True when its har/har_results.json exists."""
        return (self.run_dir(config, seed) / "har" / "har_results.json").is_file()

    def _submit_all(self, stage: str, todo: list[tuple[Config, int]], module: str,
                    args: Callable[[Config, int, object], list]) -> None:
        b = self.bench
        with b._pool() as pool:
            pool.wait([pool.submit(b._command(f"calibration-{c.name}-seed{s}-{stage}", module,
                                              lambda slot, c=c, s=s: args(c, s, slot))) for c, s in todo])

    def run_fewshot(self) -> None:
        """Train every configuration's unfinished few-shot runs (not those that only sample).

        Raises:
            StageError: a command failed (unless the Bench keeps going).
        """
        b = self.bench

        def args(c: Config, s: int, slot: object) -> list:
            return [*b.fewshot_args(teacher_checkpoint(b.teacher_dir, c.level.teacher_share), self.run_dir(c, s) / "fewshot",
                                    c.preset, slot, save_interval=self._steps(c)),
                    "--seed", s, *c.level.fewshot_args]

        todo = [(c, s) for c, s in self._each(self.fewshot_done) if not c.reuses_fewshot]
        self._submit_all("fewshot", todo, "mdm_kinemic.train_fewshot", args)

    def run_synth(self) -> None:
        """Sample every unfinished synthetic set from its finished few-shot run.

        Raises:
            StageError: a few-shot run is unfinished, a set was drawn from an older checkpoint of
                its run, or a command failed (unless the Bench keeps going).
        """
        b = self.bench
        stale = self._fail_stale("synth")
        todo = [t for t in self._each(self.synth_done) if t not in stale]
        missing = [(c, s) for c, s in todo if not self.fewshot_done(c, s)]
        for c, s in missing:
            b._fail(f"calibration-{c.name}-seed{s}-synth: {self.fewshot_dir(c, s)} holds no finished run")

        def args(c: Config, s: int, slot: object) -> list:
            return ["--model_path", latest_step(self.fewshot_dir(c, s))[1], "--out", self.run_dir(c, s) / "synth",
                    "--per_class", self.per_class(c), "--target_data", b.target, "--fewshot_split", FEWSHOT_ID,
                    "--device", b._device(slot), "--seed", s, "--no-progress", *c.level.synth_args]

        self._submit_all("synth", [t for t in todo if t not in missing], "mdm_kinemic.synth", args)

    def _har_args(self, slot: object) -> list:
        b = self.bench
        return ["--test", b.target, "--test_split", VAL_SPLIT, "--seeds", b.preset.har_seeds, *b._protocol_args(slot),
                "--recogniser_ckpt", b.evaluator_stem.with_suffix(".safetensors"), "--gen_metrics", "action2motion",
                "--jobs", 1 if b._cpu_jobs() else b.jobs, "--no-progress"]

    def run_har(self) -> None:
        """Score every unfinished synthetic set, and real only once, on the validation clips.

        Trains the split's fixed evaluator first when the benchmark's har stage has not (a split
        run ``--until teacher``).

        Raises:
            StageError: results of another protocol or seed count (always); a failed evaluator,
                an incomplete synthetic set or one drawn from an older checkpoint, or a failed
                command (unless the Bench keeps going).
        """
        b = self.bench
        results = [self.run_dir(c, s) / "har" / "har_results.json" for c in self.configs for s in range(self.seeds)]
        stale = b.stale_har_results([*results, self.root / REAL_ONLY / "har_results.json"])
        if stale:  # even with keep_going: study.json would merge them
            raise StageError("calibration: results trained under another ST-GCN protocol or number of recogniser seeds "
                             "would be merged with new ones: " + "; ".join(stale) + ". Remove them to train them again, "
                             "or run the study with the --har_seeds they had")
        if not b.evaluator_done():
            # the evaluator depends on the target clips only: a split run --until teacher gets it here
            with b._pool() as pool:
                pool.wait([pool.submit(b.evaluator_command())])
        if not b.evaluator_done():
            b._fail(f"calibration: no fixed evaluator at {b.evaluator_stem}: its command left none "
                    f"(see {b.out / 'logs' / 'har-evaluator.log'})")
            return
        # a result scored on a set of an older checkpoint would enter study.json as the new model's
        old_sets = self._fail_stale("har")
        todo = [t for t in self._each(self.har_done) if t not in old_sets]
        missing = [(c, s) for c, s in todo if not self.synth_done(c, s)]
        for c, s in missing:
            b._fail(f"calibration-{c.name}-seed{s}-har: {self.run_dir(c, s) / 'synth'} is incomplete")

        def args(c: Config, s: int, slot: object) -> list:
            return ["--train_real", b.target, "--train_real_split", "train", "--train_synthetic", self.run_dir(c, s) / "synth",
                    "--no-real_only", *self._har_args(slot), "--out", self.run_dir(c, s) / "har"]

        with b._pool() as pool:
            futures = [pool.submit(b._command(f"calibration-{c.name}-seed{s}-har", "mdm_kinemic.har.evaluate",
                                              lambda slot, c=c, s=s: args(c, s, slot)))
                       for c, s in todo if (c, s) not in missing]
            if not (self.root / REAL_ONLY / "har_results.json").is_file():
                futures.append(pool.submit(b._command(f"calibration-{REAL_ONLY}", "mdm_kinemic.har.evaluate", lambda slot: [
                    "--train_real", b.target, "--train_real_split", "train", *self._har_args(slot),
                    "--out", self.root / REAL_ONLY])))
            pool.wait(futures)

    def summary(self) -> dict:
        """study.json's content from the runs present (a configuration enters with all its seeds)."""
        runs: dict[str, list[dict]] = {}
        fids: dict[str, list[float | None]] = {}
        for config in self.configs:
            if all(self.har_done(config, s) for s in range(self.seeds)):
                results = [json.loads((self.run_dir(config, s) / "har" / "har_results.json").read_text())
                           for s in range(self.seeds)]
                runs[config.name] = [r["runs"]["real_plus_synthetic"] for r in results]
                fids[config.name] = [r.get("generative_metrics", {}).get("sets", {}).get("train_synthetic", {})
                                     .get("action2motion", {}).get("fid") for r in results]
        real_path = self.root / REAL_ONLY / "har_results.json"
        real = json.loads(real_path.read_text())["runs"][REAL_ONLY] if real_path.is_file() else None
        return study_summary(self.configs, runs, fids, real)

    def run(self) -> dict:
        """Every stage, then study.json and study.md; returns the summary.

        Raises:
            StageError: a command failed (unless the Bench keeps going).
        """
        for stage in (self.run_fewshot, self.run_synth, self.run_har):
            stage()
        summary = self.summary()
        write_record(self.root / STUDY_FILE, summary, study_markdown(summary))
        return summary


def load_bench(folder: Path, preset: BenchPreset, jobs: int, devices: tuple[str, ...], nice: int, keep_going: bool,
               har_seeds: int | None = None) -> Bench:
    """The Bench of a split folder written by mdm_kinemic.bench.bandai, at the sizes it ran with.

    The sizes are those its status.json records (the preset with the driver's overrides, e.g.
    ``--har_lr``); ``preset`` serves folders written before the driver recorded them.
    ``har_seeds`` replaces the recorded number of recogniser seeds per run (the study's own
    ``--har_seeds``); the recogniser protocol itself stays the split's.

    Raises:
        FileNotFoundError: the folder holds no split.json (the message names the command that writes it).
    """
    split_file = folder / SPLIT_FILE
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file} does not exist: --bench must be a split folder of "
                                "python -m mdm_kinemic.bench.bandai (OUT, or OUT/NAME with several target lists)")
    recorded = read_status(folder).get("preset")
    if recorded is not None:
        preset = BenchPreset(**recorded)
    if har_seeds is not None:
        preset = dataclasses.replace(preset, har_seeds=har_seeds)
    settings = json.loads(split_file.read_text())["settings"]
    split = SplitSettings(tuple(settings["target_contents"]), settings["shots"], settings["seed"],
                          settings.get("mirror_source", False))
    return Bench(folder, folder, split, preset, jobs=jobs, devices=devices, nice=nice, keep_going=keep_going,
                 name=folder.name)


def build_parser() -> argparse.ArgumentParser:
    """The study's flags (``python -m mdm_kinemic.bench.calibrate -h``)."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.bench.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("--bench", required=True, type=Path, help="a split folder of python -m mdm_kinemic.bench.bandai after its teacher stage")
    p.add_argument("--factors", nargs="*", default=None,
                   help="factors to study (default: all; none: MDM + LoRA and KineMIC Full only): "
                   + ", ".join(factors(PRESETS["cpu"])))
    p.add_argument("--seeds", type=int, default=3, help="few-shot seeds per configuration (default: %(default)s)")
    p.add_argument("--har_seeds", type=int, default=None,
                   help="recogniser seeds per few-shot run (default: the split's); the paired intervals resample "
                        "few-shot seeds first, so with a generator's spread a few recogniser seeds per run suffice")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS),
                   help="the sizes of a split whose status.json does not record them (default: %(default)s)")
    add_runner_arguments(p, "commands at once on CPU, one torch thread each (default: 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study; exit 2 on bad input, 1 on a failed command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.seeds < 1 or args.jobs < 1 or (args.har_seeds is not None and args.har_seeds < 1):
            raise ValueError(f"--seeds, --har_seeds and --jobs must be >= 1, got {args.seeds}, {args.har_seeds} "
                             f"and {args.jobs}")
        preset = get_preset(args.preset)
        configs = plan(preset, args.factors if args.factors is not None else list(factors(preset)))
        devices = parse_devices(args.devices) if args.devices is not None else ()
    except ValueError as err:
        parser.error(str(err))
    try:
        bench = load_bench(args.bench, preset, args.jobs, devices, args.nice, args.keep_going, args.har_seeds)
        recorded = read_status(args.bench).get("teacher_step")
        step = latest_step(bench.teacher_dir)[0]
        # upstream trains on past teacher_steps to the epoch's end: a checkpoint at teacher_steps
        # can exist while it runs, and only the driver's status.json says the stage ended there
        if not bench.teacher_done() or recorded != step:
            raise FileNotFoundError(f"{bench.teacher_dir} holds no finished teacher (latest step {step}, {args.bench / STATUS_FILE} records "
                                    f"{recorded}, the preset asks {bench.preset.teacher_steps}): run the benchmark's teacher "
                                    "stage to its end first (python -m mdm_kinemic.bench.bandai ... --until teacher)")
        study = Study(bench, configs, args.seeds)
        # Ctrl-C or kill stops the running commands too
        with holding([study.root], STUDY_LOCK, "python -m mdm_kinemic.bench.calibrate"), stopping_commands():
            summary = study.run()
    except (FileNotFoundError, ValueError, FolderBusy) as err:  # ValueError: runs that cannot be paired (other clips or seeds)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(study_markdown(summary))
    return 1 if bench.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
