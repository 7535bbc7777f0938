"""Results table in the paper's shape: ``python -m mdm_kinemic.har.results_table``.

Rows are methods (real only, MDM zero-shot, MDM+LoRA, KineMIC and its ablations), each read from
a ``har_results.json`` of ``mdm_kinemic.har.evaluate``; columns are the paper's metrics: median
top-1 over seeds (Table 1), mean +- std top-1 (Table 2 ablations), and the generated set's
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
from dataclasses import asdict, dataclass
from pathlib import Path

from mdm_kinemic.har.evaluate import MAX_OVER_EPOCHS_KEY, REAL_ONLY, REAL_PLUS_SYNTHETIC
from mdm_kinemic.har.report import write_json, write_text

#: The paper's method rows, in its order; ablation rows follow under names of the user's choice.
PAPER_ROWS = ("real only", "MDM zero-shot", "MDM+LoRA", "KineMIC")

#: (key in MethodRow, Markdown header)
COLUMNS = (
    ("top1_median", "Top-1 median (%)"),
    ("top1_mean_std", "Top-1 mean ± std (%)"),
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
    )


def _cell(row: MethodRow, key: str) -> str:
    if key == "top1_mean_std":
        if row.top1_mean is None:
            return "–"
        return f"{row.top1_mean:.2f} ± {row.top1_std:.2f}"
    value = getattr(row, key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if key in ("fid", "diversity", "multimodality") else f"{value:.2f}"


def to_markdown(rows: Sequence[MethodRow]) -> str:
    """Markdown table, one row per method, columns COLUMNS; a note names the metric definitions."""
    header = "| Method | " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|---|" + "|".join("---:" for _ in COLUMNS) + "|"
    body = [f"| {row.method} | " + " | ".join(_cell(row, key) for key, _ in COLUMNS) + " |" for row in rows]
    definitions = sorted({row.definition for row in rows if row.definition})
    seeds = sorted({row.seeds for row in rows if row.seeds})
    notes = [
        "",
        f"Top-1: ST-GCN test accuracy after the final epoch, over {', '.join(map(str, seeds)) or '?'} seed(s); std with ddof = 1.",
        (
            "Acc./FID/Diversity/MModality: the method's training clips under an ST-GCN trained on real data; "
            f"definition: {', '.join(definitions) or 'none'}. The max-over-epochs column selects on the test split."
        ),
    ]
    return "\n".join([header, rule, *body, *notes]) + "\n"


def write_results_table(rows: Sequence[MethodRow], out_stem: str | Path) -> tuple[Path, Path]:
    """Write ``out_stem.md`` and ``out_stem.json`` atomically; returns both paths."""
    out_stem = Path(out_stem)
    md = write_text(out_stem.with_suffix(".md"), to_markdown(rows))
    js = write_json(
        out_stem.with_suffix(".json"),
        {"columns": [key for key, _ in COLUMNS], "rows": [asdict(row) for row in rows]},
    )
    return md, js


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
    parser.add_argument("--out", required=True, help="output path without suffix; writes .md and .json")
    args = parser.parse_args(argv)
    rows = []
    for spec in args.row:
        name, path, run = parse_row_spec(spec)
        if not path.is_file():
            raise SystemExit(f"--row {spec!r}: {path} does not exist; run python -m mdm_kinemic.har.evaluate first")
        rows.append(row_from_results(name, json.loads(path.read_text()), run, args.definition, f"{path}:{run}"))
    md, js = write_results_table(rows, args.out)
    print(to_markdown(rows))
    print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
