"""Two calibration studies of one split's targets, compared: ``python -m mdm_kinemic.bench.compare_studies``.

    python -m mdm_kinemic.bench.compare_studies OUT/mirrored OUT/mirrored_mirror_source --out OUT/mirror_source_effect

Two folders of ``mdm_kinemic.bench.bandai`` with the same target contents, shots, shot draw
and sizes (the preset their status.json records) that differ in how the split was built (``--mirror_source``: the source, hence the teacher and
the mining pool) score the same validation clips with the same few-shot and recogniser seeds.
For every configuration both studies (``python -m mdm_kinemic.bench.calibrate``) hold, this
writes OUT.json and OUT.md: its balanced median in each, the paired difference second minus
first (few-shot seed f and recogniser seed r of one paired with those of the other on the same
clips; the bootstrap draws few-shot seeds, then recogniser seeds within them: har/paired.py),
and each study's own difference to MDM + LoRA. It trains nothing and reads no test clip.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mdm_kinemic.bench.pooled_study import study_runs
from mdm_kinemic.bench.split import SPLIT_FILE
from mdm_kinemic.bench.stages import read_status
from mdm_kinemic.har.paired import format_paired, paired_runs
from mdm_kinemic.har.report import write_record

#: split.json settings that must agree for two studies to score the same clips
SAME_TARGETS = ("target_contents", "shots", "seed")


def split_settings(folder: Path) -> dict:
    """The ``settings`` of a folder's split.json, with the sizes its status.json records as "preset".

    Raises:
        FileNotFoundError: no split.json (the message names the command that writes it).
        ValueError: a split.json without settings.
    """
    path = folder / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give split folders of python -m mdm_kinemic.bench.bandai")
    settings = json.loads(path.read_text()).get("settings")
    if not isinstance(settings, dict):
        raise ValueError(f"{path} has no settings; run python -m mdm_kinemic.bench.bandai --until split again")
    return {**settings, "preset": read_status(folder).get("preset")}


def compare_summary(names: tuple[str, str], settings: Sequence[dict], studies: Sequence[dict],
                    runs: Sequence[dict[str, dict]]) -> dict:
    """The comparison of two studies: every configuration (and real only) both hold.

    Args:
        names: the two folders' names (first, second).
        settings: each folder's split.json settings.
        studies: each folder's study.json.
        runs: each folder's runs merged over few-shot seeds (pooled_study.study_runs).

    Returns:
        {"studies": names, "settings": {name: settings}, "evaluated_on": ..., "configs": {name:
        {"balanced_median": {study: %}, "paired_second_minus_first": {"mean", "ci95", "resolved"},
        "paired_vs_mdm_lora": {study: entry or None}}}, "only_in": {study: [configurations the
        other lacks]}, "units": ...}.

    Raises:
        ValueError: settings of other targets or sizes, no configuration in both, or runs that
            cannot be paired (other clips or seeds).
    """
    differ = [k for k in SAME_TARGETS if settings[0].get(k) != settings[1].get(k)]
    if differ:
        raise ValueError(f"the two splits differ in {', '.join(differ)}: compare studies of the same targets, shots "
                         "and shot draw (their validation clips must be the same)")
    presets = [s.get("preset") or {} for s in settings]
    sizes = sorted(k for k in set(presets[0]) & set(presets[1]) if presets[0][k] != presets[1][k])
    if sizes:  # e.g. other few-shot steps or recogniser epochs: the difference would not be the source's
        raise ValueError(f"the two splits ran at other sizes ({', '.join(f'{k}: {presets[0][k]} and {presets[1][k]}' for k in sizes)}): "
                         "compare studies run with the same preset and overrides")
    held = [[n for n in study["configs"] if n in r] for study, r in zip(studies, runs)]
    shared = [n for n in held[0] if n in held[1]]
    if not shared:
        raise ValueError(f"no configuration is in both studies ({names[0]}: {', '.join(held[0]) or 'none'}; "
                         f"{names[1]}: {', '.join(held[1]) or 'none'})")
    configs = {}
    for name in shared:
        entries = [s["configs"][name] for s in studies]
        configs[name] = {
            "balanced_median": {n: e["balanced_median"] for n, e in zip(names, entries)},
            "paired_second_minus_first": paired_runs(runs[1][name], runs[0][name]).to_summary(),
            "paired_vs_mdm_lora": {n: e.get("paired_vs_mdm_lora") for n, e in zip(names, entries)},
        }
    return {
        "studies": list(names),
        "settings": dict(zip(names, settings)),
        "evaluated_on": "target/val of both (the same clips; never test)",
        "configs": configs,
        "only_in": {n: [c for c in h if c not in shared] for n, h in zip(names, held)},
        "units": f"balanced accuracy in %; paired differences in points, {names[1]} minus {names[0]} (run by run) or "
        "configuration minus MDM + LoRA within a study, with a 95 % bootstrap interval",
    }


def compare_markdown(summary: dict) -> str:
    """OUT.md: one row per configuration."""
    first, second = summary["studies"]
    lines = [f"Calibration studies compared: {second} minus {first} ({summary['evaluated_on']}).", "",
             f"| configuration | median, {first} | median, {second} | Δ {second} − {first} [95 % CI] "
             f"| Δ vs MDM + LoRA, {first} | Δ vs MDM + LoRA, {second} |",
             "|---|---|---|---|---|---|"]
    for name, e in summary["configs"].items():
        vs = e["paired_vs_mdm_lora"]
        lines.append(f"| {name} | {e['balanced_median'][first]:.2f} | {e['balanced_median'][second]:.2f} "
                     f"| {format_paired(e['paired_second_minus_first'])} | {format_paired(vs[first])} "
                     f"| {format_paired(vs[second])} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the two studies; writes OUT.json and OUT.md and prints the table. Exit 2 on bad input."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.bench.compare_studies", description=__doc__.split("\n")[0])
    p.add_argument("first", type=Path, help="split folder whose study is the reference")
    p.add_argument("second", type=Path, help="split folder of the same targets built otherwise (e.g. --mirror_source)")
    p.add_argument("--out", required=True, type=Path, help="output path without suffix")
    args = p.parse_args(argv)
    names = (args.first.name, args.second.name)
    if names[0] == names[1]:
        p.error(f"give two split folders of distinct names, got {args.first} and {args.second}")
    try:
        settings = [split_settings(f) for f in (args.first, args.second)]
        loaded = [study_runs(f) for f in (args.first, args.second)]
        summary = compare_summary(names, settings, [s for s, _ in loaded], [r for _, r in loaded])
    except (FileNotFoundError, ValueError) as err:  # ValueError: other targets or runs that cannot be paired
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = compare_markdown(summary)
    write_record(args.out, summary, table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
