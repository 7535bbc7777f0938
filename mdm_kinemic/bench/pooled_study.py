"""The calibration studies of several benchmark splits, pooled: ``python -m mdm_kinemic.bench.pooled_study``.

    python -m mdm_kinemic.bench.pooled_study OUT/default OUT/mirrored --out OUT/calibration_pooled

Each split's study (``python -m mdm_kinemic.bench.calibrate --bench OUT/NAME``) scores its
configurations on its own validation clips with its own teacher and generators, so the splits
are independent strata. For every configuration that each split's ``study.json`` holds, this
writes OUT.json and OUT.md: its balanced median per split and their mean, and its paired
differences pooled over the splits (the mean of the splits' differences, each split weighing
the same, with a bootstrap that resamples each split on its own: har/paired.py's
``pooled_paired_runs``) to MDM + LoRA, to real only, to the baseline (a level of KineMIC) and to
MDM + LoRA at the same level. It trains nothing and reads no test clip.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mdm_kinemic.bench.calibrate import (
    BASELINE,
    PAIRED_AT_LEVEL,
    PAIRED_VS_BASELINE,
    STUDY_DIR,
    STUDY_FILE,
    merge_seeds,
    reference_of,
)
from mdm_kinemic.bench.summary import MDM_LORA, REAL_ONLY
from mdm_kinemic.har.paired import format_paired, pooled_paired_runs
from mdm_kinemic.har.report import write_record

HAR_RESULTS = "har_results.json"


def study_runs(split: Path) -> tuple[dict, dict[str, dict]]:
    """A split's study.json and its runs merged over few-shot seeds (calibrate.merge_seeds), real
    only repeated once per few-shot seed so that it pairs.

    Args:
        split: a split folder of mdm_kinemic.bench.bandai whose calibration study has run.

    Returns:
        (study.json's content, {configuration name: merged run} for its configurations and real only).

    Raises:
        FileNotFoundError: no study.json, or a configuration's results missing (the message names
            the file and the command that writes it).
        ValueError: a study.json or har_results.json without the expected entries, or
            configurations of different few-shot seeds.
    """
    root = split / STUDY_DIR
    path = root / f"{STUDY_FILE}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run python -m mdm_kinemic.bench.calibrate --bench {split} first")
    study = json.loads(path.read_text())
    runs: dict[str, dict] = {}
    fewshot_seeds: dict[str, list[str]] = {}
    try:
        for name, entry in study["configs"].items():
            if name == REAL_ONLY:
                continue
            # the few-shot seeds study.json was written from ("F:R" labels), not whatever folders exist
            fewshot_seeds[name] = list(dict.fromkeys(str(label).split(":")[0] for label in entry["seeds"]))
            files = [root / name / f"seed{f}" / "har" / HAR_RESULTS for f in fewshot_seeds[name]]
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"{missing[0]} does not exist but {path} counts it; run python -m "
                                        f"mdm_kinemic.bench.calibrate --bench {split} again")
            runs[name] = merge_seeds([json.loads(f.read_text())["runs"]["real_plus_synthetic"] for f in files])
        real = root / REAL_ONLY / HAR_RESULTS
        if len({tuple(s) for s in fewshot_seeds.values()}) > 1:
            raise ValueError(f"{path}: its configurations have different few-shot seeds; run the study with one --seeds")
        if real.is_file() and fewshot_seeds:
            count = len(next(iter(fewshot_seeds.values())))
            runs[REAL_ONLY] = merge_seeds([json.loads(real.read_text())["runs"][REAL_ONLY]] * count)
    except KeyError as err:
        raise ValueError(f"{root}: a study.json or har_results.json without {err}; run python -m "
                         f"mdm_kinemic.bench.calibrate --bench {split} again to rewrite them") from err
    return study, runs


def _pooled(runs: Mapping[str, Mapping[str, dict]], name: str, reference: str) -> dict | None:
    """Pooled ``name`` - ``reference`` over the splits, in name order; None unless every split holds both."""
    if not all(name in r and reference in r for r in runs.values()):
        return None
    return pooled_paired_runs([(runs[s][name], runs[s][reference]) for s in sorted(runs)]).to_summary()


def pooled_summary(studies: Mapping[str, dict], runs: Mapping[str, Mapping[str, dict]]) -> dict:
    """The pooled study: every configuration present in every split.

    Args:
        studies: {split name: its study.json}, in split order.
        runs: {split name: {configuration: merged run}} (:func:`study_runs`).

    Returns:
        {"splits": [...], "configs": {name: {"balanced_median_per_split", "balanced_median_mean",
        "paired_vs_mdm_lora", "paired_vs_real_only", "paired_vs_baseline" (KineMIC levels),
        "paired_vs_mdm_lora_at_level" (levels run for both methods)}}, "units": ...}; a paired
        entry is {"mean", "ci95", "resolved"} or None.

    Raises:
        ValueError: runs that cannot be paired within a split.
    """
    names = list(studies)
    first = studies[names[0]]["configs"]
    shared = [n for n in first if n != REAL_ONLY and all(n in studies[s]["configs"] for s in names)]
    configs: dict = {}
    for name in shared:
        medians = {s: studies[s]["configs"][name]["balanced_median"] for s in names}
        entry = {"balanced_median_per_split": medians, "balanced_median_mean": sum(medians.values()) / len(medians),
                 "paired_vs_mdm_lora": _pooled(runs, name, MDM_LORA), "paired_vs_real_only": _pooled(runs, name, REAL_ONLY)}
        if first[name].get("factor") and first[name].get("preset") == BASELINE:
            entry[PAIRED_VS_BASELINE] = _pooled(runs, name, BASELINE)
            if first[name].get(PAIRED_AT_LEVEL):
                entry[PAIRED_AT_LEVEL] = _pooled(runs, name, reference_of(name))
        configs[name] = entry
    return {
        "splits": names,
        "evaluated_on": "each split's target/val (never test)",
        "configs": configs,
        "units": "balanced accuracy in %; paired differences in points, configuration minus reference, the mean of "
        "the splits' differences with a 95 % bootstrap interval that resamples each split on its own",
    }


def pooled_markdown(summary: dict) -> str:
    """OUT.md: one row per configuration."""
    splits = summary["splits"]

    lines = [f"Calibration pooled over the splits {', '.join(splits)} ({summary['evaluated_on']}).", "",
             "| configuration | " + " | ".join(f"median, {s}" for s in splits) + " | mean of medians "
             "| Δ vs MDM + LoRA [95 % CI] | Δ vs real only [95 % CI] | Δ vs baseline [95 % CI] "
             "| Δ vs MDM + LoRA at the level [95 % CI] |",
             "|---|" + "---|" * (len(splits) + 5)]
    for name, e in summary["configs"].items():
        medians = " | ".join(f"{e['balanced_median_per_split'][s]:.2f}" for s in splits)
        lines.append(f"| {name} | {medians} | {e['balanced_median_mean']:.2f} | {format_paired(e['paired_vs_mdm_lora'])} "
                     f"| {format_paired(e['paired_vs_real_only'])} | {format_paired(e.get(PAIRED_VS_BASELINE))} "
                     f"| {format_paired(e.get(PAIRED_AT_LEVEL))} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Pool the splits' studies; writes OUT.json and OUT.md and prints the table. Exit 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.bench.pooled_study", description=__doc__.split("\n")[0])
    p.add_argument("splits", nargs="+", type=Path, help="split folders of mdm_kinemic.bench.bandai whose studies have run")
    p.add_argument("--out", required=True, type=Path, help="output path without suffix")
    args = p.parse_args(argv)
    names = [s.name for s in args.splits]
    if len(args.splits) < 2 or len(set(names)) < len(names):
        p.error(f"give at least two split folders of distinct names, got {', '.join(map(str, args.splits))}")
    try:
        loaded = {s.name: study_runs(s) for s in args.splits}
        summary = pooled_summary({n: study for n, (study, _) in loaded.items()}, {n: runs for n, (_, runs) in loaded.items()})
    except (FileNotFoundError, ValueError, KeyError) as err:  # ValueError: runs that cannot be paired
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = pooled_markdown(summary)
    write_record(args.out, summary, table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
