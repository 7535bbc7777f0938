"""Results table in the paper's shape: ``python -m mdm_kinemic.har.results_table``.

Rows are methods (real only, MDM zero-shot, MDM+LoRA, KineMIC and its ablations), each read from
a ``har_results.json`` of ``mdm_kinemic.har.evaluate``; columns are the headline balanced
accuracy (mean per-class recall; median and mean +- std over seeds), the paper's metrics: median
top-1 over seeds (Table 1), mean +- std top-1 (Table 2 ablations), the seeds whose recogniser
converged (flagged when not all did), and the generated set's
recogniser accuracy, FID, diversity and multimodality; the authors' max-over-epochs top-1 is an
extra column, labelled as selected on the test split. Written as Markdown and JSON.

Example:
    python -m mdm_kinemic.har.results_table \\
        --row "real only=results/kinemic/har_results.json:real_only" \\
        --row "MDM zero-shot=results/mdm/har_results.json" \\
        --row "MDM+LoRA=results/lora/har_results.json" \\
        --row "KineMIC=results/kinemic/har_results.json" --out results/table1
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mdm_kinemic.har.evaluate import MAX_OVER_EPOCHS_KEY, REAL_ONLY, REAL_PLUS_SYNTHETIC
from mdm_kinemic.har.paired import format_paired, paired_runs
from mdm_kinemic.har.report import write_record
from mdm_kinemic.har.stats import balanced_accuracy, summarize_seeds

#: The paper's method rows, in its order; ablation rows follow under names of the user's choice.
PAPER_ROWS = ("real only", "MDM zero-shot", "MDM+LoRA", "KineMIC")

#: (key in MethodRow, Markdown header)
COLUMNS = (
    ("balanced_median", "Balanced median (%)"),
    ("balanced_mean_std", "Balanced mean ± std (%)"),
    ("top1_median", "Top-1 median (%)"),
    ("top1_mean_std", "Top-1 mean ± std (%)"),
    ("converged", "Converged seeds"),
    ("accuracy", "Acc. (%)"),
    ("fid", "FID"),
    ("diversity", "Diversity"),
    ("multimodality", "MModality"),
    ("top1_max_over_epochs", "Top-1 max over epochs, authors' (selected on test)"),
)


@dataclass(frozen=True)
class MethodRow:
    """One method's metrics; None where not measured.

    Attributes:
        method: row label.
        top1_median, top1_mean, top1_std: final-epoch test top-1 (%) over seeds.
        seeds: number of seeds.
        accuracy, fid, diversity, multimodality: generative metrics of the method's training clips
            (synthetic set; real training set for "real only") under the real-data recogniser.
        definition: "action2motion" or "text2motion", the diversity/multimodality definition.
        top1_max_over_epochs: median over seeds of the max-over-epochs test top-1 (authors').
        source: the results file and run the row was read from.
        balanced_median, balanced_mean, balanced_std: final-epoch balanced accuracy (%), the
            mean per-class recall, over seeds.
        converged_seeds: seeds whose recogniser converged (stats.is_converged); None when the
            results predate the check.
        test_per_class: test clips per class.
        paired: {reference row: PairedDifference.to_dict()}, this row's balanced accuracy minus
            the reference's, per seed, with its bootstrap interval (har/paired.py).
    """

    method: str
    top1_median: float | None = None
    top1_mean: float | None = None
    top1_std: float | None = None
    seeds: int | None = None
    accuracy: float | None = None
    fid: float | None = None
    diversity: float | None = None
    multimodality: float | None = None
    definition: str | None = None
    top1_max_over_epochs: float | None = None
    source: str = ""
    balanced_median: float | None = None
    balanced_mean: float | None = None
    balanced_std: float | None = None
    converged_seeds: int | None = None
    test_per_class: dict[str, int] | None = None
    paired: dict[str, dict] | None = None


def row_from_results(method: str, results: dict, run: str = REAL_PLUS_SYNTHETIC, definition: str = "action2motion", source: str = "") -> MethodRow:
    """A row from an evaluate results dict.

    Args:
        method: row label.
        results: the parsed har_results.json.
        run: "real_plus_synthetic" (the method's synthetic data) or "real_only" (the baseline).
        definition: which generative-metric definition to read.

    Raises:
        ValueError: the run is not in the results (e.g. a real-only evaluation asked for synthetic).
    """
    runs = results.get("runs", {})
    if run not in runs:
        raise ValueError(f"{source or 'results'}: no run {run!r}; it holds {sorted(runs)}")
    summary = runs[run]["top1_final_epoch"]
    balanced = balanced_summary(runs[run])
    maxima = runs[run].get(MAX_OVER_EPOCHS_KEY)
    set_name = "train_real" if run == REAL_ONLY else "train_synthetic"
    gen = results.get("generative_metrics", {}).get("sets", {}).get(set_name, {}).get(definition, {})
    has_gen = bool(gen) and "skipped" not in gen
    return MethodRow(
        method=method,
        top1_median=summary["median"],
        top1_mean=summary["mean"],
        top1_std=summary["std"],
        seeds=len(summary["values"]),
        accuracy=gen.get("accuracy") if has_gen else None,
        fid=gen.get("fid") if has_gen else None,
        diversity=gen.get("diversity") if has_gen else None,
        multimodality=gen.get("multimodality") if has_gen else None,
        definition=definition if has_gen else None,
        top1_max_over_epochs=maxima["median"] if maxima else None,
        source=source,
        balanced_median=balanced["median"] if balanced else None,
        balanced_mean=balanced["mean"] if balanced else None,
        balanced_std=balanced["std"] if balanced else None,
        converged_seeds=runs[run].get("converged_seeds"),
        test_per_class=test_counts(runs[run]),
    )


def balanced_summary(run: dict) -> dict | None:
    """A run's balanced-accuracy summary; from its per-seed confusion matrices when the results predate it."""
    if "balanced_accuracy_final_epoch" in run:
        return run["balanced_accuracy_final_epoch"]
    if "confusion_matrix_per_seed" in run:
        return summarize_seeds([balanced_accuracy(np.asarray(c)) for c in run["confusion_matrix_per_seed"]]).to_dict()
    return None


def test_counts(run: dict) -> dict[str, int] | None:
    """A run's test clips per class (from its confusion matrix when the results predate the field)."""
    if "test_per_class" in run:
        return dict(run["test_per_class"])
    if "confusion_matrix" in run and "classes" in run:
        return dict(zip(run["classes"], np.asarray(run["confusion_matrix"]).sum(axis=1).astype(int).tolist()))
    return None


def _cell(row: MethodRow, key: str) -> str:
    if key in ("top1_mean_std", "balanced_mean_std"):
        mean, std = (row.top1_mean, row.top1_std) if key == "top1_mean_std" else (row.balanced_mean, row.balanced_std)
        return "–" if mean is None else f"{mean:.2f} ± {std:.2f}"
    if key == "converged":
        if row.converged_seeds is None or row.seeds is None:
            return "not checked"
        flag = "" if row.converged_seeds == row.seeds else " ⚠ NOT ALL CONVERGED"
        return f"{row.converged_seeds}/{row.seeds}{flag}"
    value = getattr(row, key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if key in ("fid", "diversity", "multimodality") else f"{value:.2f}"


def with_paired(rows: Sequence[MethodRow], runs: Sequence[dict], references: Sequence[str]) -> list[MethodRow]:
    """Rows with ``paired`` filled: each row against each reference row (by method name) but itself.

    Args:
        rows: the table's rows.
        runs: the evaluate run dict each row was read from (same order).
        references: method names of the reference rows (e.g. "MDM + LoRA", "real only").

    Raises:
        ValueError: a reference that names no row (the message lists them), or runs that cannot
            be paired (paired.paired_runs).
    """
    by_name = {row.method: run for row, run in zip(rows, runs)}
    missing = [r for r in references if r not in by_name]
    if missing:
        raise ValueError(f"--paired {missing} names no row; rows: {', '.join(by_name)}")
    out = []
    for row, run in zip(rows, runs):
        paired = {ref: paired_runs(run, by_name[ref]).to_dict() for ref in references if ref != row.method}
        out.append(replace(row, paired=paired or None))
    return out


def to_markdown(rows: Sequence[MethodRow]) -> str:
    """Markdown table, one row per method, columns COLUMNS and one per paired reference; notes name the definitions."""
    references = list(dict.fromkeys(ref for row in rows for ref in (row.paired or {})))
    titles = [title for _, title in COLUMNS[:5]] + [f"Δ balanced vs {ref} [95 % CI]" for ref in references]
    titles += [title for _, title in COLUMNS[5:]]
    header = "| Method | " + " | ".join(titles) + " |"
    rule = "|---|" + "|".join("---:" for _ in titles) + "|"
    body = []
    for row in rows:
        cells = [_cell(row, key) for key, _ in COLUMNS[:5]] + [format_paired((row.paired or {}).get(ref)) for ref in references]
        cells += [_cell(row, key) for key, _ in COLUMNS[5:]]
        body.append(f"| {row.method} | " + " | ".join(cells) + " |")
    definitions = sorted({row.definition for row in rows if row.definition})
    seeds = sorted({row.seeds for row in rows if row.seeds})
    counts = next((row.test_per_class for row in rows if row.test_per_class), None)
    count_text = ", ".join(f"{name} {n}" for name, n in counts.items()) if counts else "not recorded"
    notes = [
        "",
        f"Test clips per class: {count_text}.",
        (
            "Balanced: mean per-class recall, the headline (predicting only the majority class scores 100/K %); "
            f"Top-1: ST-GCN test accuracy after the final epoch, over {', '.join(map(str, seeds)) or '?'} seed(s); std with ddof = 1."
        ),
        (
            "Δ balanced: this row minus the reference, in points, mean over paired seeds (same recogniser seeds, same "
            "test clips) with a 95 % bootstrap interval over seeds and test clips; ✓ = resolved (the interval excludes 0)."
        ),
        (
            "Converged seeds: seeds whose recogniser predicts every class for at least 5 % of that class's training "
            "clips; a row marked ⚠ averages seeds that did not converge."
        ),
        (
            "Acc./FID/Diversity/MModality: the method's training clips under an ST-GCN trained on real data; "
            f"definition: {', '.join(definitions) or 'none'}. The max-over-epochs column selects on the test split."
        ),
    ]
    return "\n".join([header, rule, *body, *notes]) + "\n"


def write_results_table(rows: Sequence[MethodRow], out_stem: str | Path) -> tuple[Path, Path]:
    """Write ``out_stem.md`` and ``out_stem.json`` atomically; returns both paths."""
    return write_record(out_stem, {"columns": [key for key, _ in COLUMNS], "rows": [asdict(row) for row in rows]},
                        to_markdown(rows))


def parse_row_spec(spec: str) -> tuple[str, Path, str]:
    """'NAME=PATH[:RUN]' -> (name, path, run); RUN is real_plus_synthetic (default) or real_only."""
    if "=" not in spec:
        raise ValueError(f"--row {spec!r}: expected NAME=PATH[:RUN], e.g. 'KineMIC=results/kinemic/har_results.json'")
    name, target = spec.split("=", 1)
    run = REAL_PLUS_SYNTHETIC
    for candidate in (REAL_ONLY, REAL_PLUS_SYNTHETIC):
        if target.endswith(":" + candidate):
            target, run = target[: -len(candidate) - 1], candidate
    return name.strip(), Path(target), run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mdm_kinemic.har.results_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", action="append", required=True, help="NAME=PATH[:RUN], RUN = real_plus_synthetic (default) or real_only; repeat in table order")
    parser.add_argument("--definition", choices=("action2motion", "text2motion"), default="action2motion", help="generative-metric definition to tabulate")
    parser.add_argument("--paired", action="append", default=[], help="NAME of a row to compare every other row with (paired balanced-accuracy difference and 95 %% interval); repeatable")
    parser.add_argument("--out", required=True, help="output path without suffix; writes .md and .json")
    args = parser.parse_args(argv)
    rows, runs = [], []
    for spec in args.row:
        name, path, run = parse_row_spec(spec)
        if not path.is_file():
            raise SystemExit(f"--row {spec!r}: {path} does not exist; run python -m mdm_kinemic.har.evaluate first")
        results = json.loads(path.read_text())
        rows.append(row_from_results(name, results, run, args.definition, f"{path}:{run}"))
        runs.append(results["runs"][run])
    if args.paired:
        try:
            rows = with_paired(rows, runs, args.paired)
        except ValueError as err:
            parser.error(str(err))
    md, js = write_results_table(rows, args.out)
    print(to_markdown(rows))
    print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
