"""The Bandai Namco few-shot benchmark (issue 8): ``python -m mdm_kinemic.bench.bandai``.

    python -m mdm_kinemic.bench.bandai --bandai_root DIR --out DIR \\
        [--target_contents default|mirrored|CONTENT,CONTENT,... [...]] [--shots 10] [--seed 0] \\
        [--ablation first|all|none] [--until split|teacher|fewshot|synth|har|table] [--only STAGE ...] [--preset cpu|full|tiny] [--jobs N] [--devices cuda:0,cuda:1,...]

``--bandai_root`` is the converted corpus (labels.txt + classes.txt, from
``python -m mdm_kinemic.data.convert --labels bandai``) or the raw BVH folder, converted once
into OUT/converted (bench/corpus.py). By default only the split is made (bench/split.py); with
``--until table`` every stage of bench/stages.py runs, each skipped when its outputs exist.
Several target lists run one after the other, each a whole benchmark (its own source, teacher
and students) in OUT/NAME; Table 2's ablation variants run on the first list only unless
``--ablation all``; OUT/results/summary.json then holds each split and their mean. One
list runs in OUT itself. ``--devices`` (one command per device at a time) or, on CPU, ``--jobs N``
run a stage's independent commands at once (bench/stages.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mdm_kinemic.bench.commands import stopping_commands
from mdm_kinemic.bench.corpus import resolve_corpus
from mdm_kinemic.bench.folder_lock import BENCH_LOCK, FolderBusy, holding
from mdm_kinemic.bench.pool import add_runner_arguments, parse_devices
from mdm_kinemic.bench.presets import (
    PRESETS,
    BenchPreset,
    check_har_iterations,
    get_preset,
)
from mdm_kinemic.bench.split import (
    NAMED_TARGET_CONTENTS,
    SplitError,
    SplitSettings,
    check_split,
    parse_target_contents,
    split_name,
)
from mdm_kinemic.bench.stages import STAGES, Bench, StageError, read_status
from mdm_kinemic.bench.summary import SUMMARY_FILE, build_summary, write_summary
from mdm_kinemic.flags import add_dataclass_options, given_values

#: --ablation: the target lists that train Table 2's ablation variants
ABLATION_CHOICES = ("first", "all", "none")


def build_parser() -> argparse.ArgumentParser:
    """Flags of the benchmark (from SplitSettings and BenchPreset)."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.bench.bandai", description=__doc__.split("\n")[0])
    p.add_argument("--bandai_root", required=True, type=Path,
                   help="converted Bandai corpus (labels.txt, classes.txt) or the raw BVH folder")
    p.add_argument("--out", required=True, type=Path, help="benchmark output folder")
    split = SplitSettings()
    p.add_argument("--target_contents", nargs="+", default=["default"],
                   help="one or more target-content lists, each comma-separated in label order or a name: "
                   + "; ".join(f"{k} = {','.join(v)}" for k, v in NAMED_TARGET_CONTENTS.items())
                   + " (default: default)")
    p.add_argument("--shots", type=int, default=split.shots, help="training clips per target class (default: %(default)s)")
    p.add_argument("--seed", type=int, default=split.seed, help="seed of the shot draw (default: %(default)s)")
    p.add_argument("--mirror_source", action=argparse.BooleanOptionalAction, default=split.mirror_source,
                   help="add every source clip mirrored left/right as M<id>, 'left'/'right' swapped in its texts "
                        "(HumanML3D's augmentation; the targets are never mirrored)")
    p.add_argument("--ablation", choices=ABLATION_CHOICES, default="first",
                   help="where Table 2's ablation variants (Base, + L_dist, + dww) run: on the first target list only "
                   "(default; the others run Table 1's methods), on every list, or on none")
    p.add_argument("--until", default="split", choices=STAGES, help="last stage to run (default: %(default)s)")
    p.add_argument("--only", nargs="+", choices=STAGES, default=None, help="run just these stages")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS), help="sizes of every stage (default: %(default)s)")
    add_dataclass_options(p, BenchPreset, "preset overrides", unset_defaults=True,
                          description="replace one size of the preset (defaults shown: the full preset's)")
    p.add_argument("--workers", type=int, default=1, help="converter processes when --bandai_root is raw BVH")
    add_runner_arguments(p, "ST-GCN seeds trained at once, each a process of one torch thread; on CPU (no --devices) "
                         "also the independent commands of a stage, one thread each (CPU: set to the cores)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark up to --until; prints the split summary or the status. Exit 2 on bad input, 1 on failure."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        splits = [SplitSettings(parse_target_contents(text), args.shots, args.seed, args.mirror_source) for text in args.target_contents]
        preset = get_preset(args.preset, **given_values(BenchPreset, args))
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
        devices = parse_devices(args.devices) if args.devices is not None else ()
        for split in splits:
            check_har_iterations(preset, args.shots * len(split.target_contents))
    except ValueError as err:
        parser.error(str(err))
    names = [split_name(s.target_contents) for s in splits]
    if len(set(names)) < len(names):
        parser.error(f"--target_contents names a list twice ({', '.join(names)}): pass each once")
    failures: list[str] = []
    try:
        corpus = resolve_corpus(args.bandai_root, args.out, args.workers)
        for split in splits:  # every list is checked before any stage runs
            check_split(corpus, split)
        benches = [
            Bench(corpus, args.out if len(splits) == 1 else args.out / name, split, preset, nice=args.nice,
                  keep_going=args.keep_going, jobs=args.jobs, name=name, devices=devices,
                  ablation=args.ablation == "all" or (args.ablation == "first" and index == 0))
            for index, (name, split) in enumerate(zip(names, splits))
        ]
        # Ctrl-C or kill stops the running commands too
        with holding([b.out for b in benches], BENCH_LOCK, "python -m mdm_kinemic.bench.bandai"), stopping_commands():
            for bench in benches:
                failures += bench.run(args.until, args.only)
            summarised = [b for b in benches if b.results_dir.joinpath(SUMMARY_FILE).is_file()]
            if len(benches) > 1 and summarised:
                runs = {b.name: b.method_runs() for b in summarised}  # one source for the splits and their mean
                write_summary(args.out / "results", build_summary({n: b.split_summary(runs[n]) for n, b in
                                                                   zip(runs, summarised)}, runs))
    except (SplitError, FileNotFoundError, ValueError, FolderBusy) as err:  # ValueError: runs that cannot be paired
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for bench in benches:
        print(json.dumps({bench.name: read_status(bench.out)}, indent=2))
    for failure in failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
