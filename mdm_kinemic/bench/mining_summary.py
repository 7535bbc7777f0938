"""Which source contents the soft positives of each target class come from (the mining report per class).

    python -m mdm_kinemic.bench.mining_summary RUN/mining_pool.json --out OUT/results/mining

reads the mining pool that ``mdm_kinemic.train_fewshot`` writes beside its checkpoints and
counts, per target class, the kept captions by the Bandai content of their clip (the clip id
``dataset-N_{content}_{style}_{id}``; a mirrored clip ``M...`` of ``--mirror_source`` as
"{content} (mirrored)"; other ids count under "other"), with the cosine range.
Writes OUT.json and a Markdown table OUT.md.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mdm_kinemic.data.humanml3d import MIRROR_PREFIX
from mdm_kinemic.data.labelling import BANDAI_NAME
from mdm_kinemic.har.report import write_record

OTHER = "other"


def content_of(clip_id: str) -> str:
    """Bandai content of a clip id ("dataset-2_wave-right-hand_normal_001" -> "wave-right-hand"), else "other".

    A mirrored clip (HumanML3D's ``M`` prefix, ``bench.bandai --mirror_source``) counts as its
    original's content marked mirrored ("Mdataset-2_wave-left-hand_normal_001" ->
    "wave-left-hand (mirrored)": a right-hand wave), so that a pool's two sides stay apart.
    """
    mirrored = clip_id.startswith(MIRROR_PREFIX)
    m = BANDAI_NAME.match(clip_id[len(MIRROR_PREFIX):] if mirrored else clip_id)
    if not m:
        return OTHER
    return f"{m.group(2)} (mirrored)" if mirrored else m.group(2)


def summarise(pool: dict) -> list[dict]:
    """Per class: name, prompts, kept, cosine min/mean/max and {content: kept captions}, most first.

    Raises:
        ValueError: the pool lacks its "classes" list (not a train_fewshot mining_pool.json).
    """
    if "classes" not in pool:
        raise ValueError("mining pool has no 'classes' list: pass the mining_pool.json that train_fewshot writes")
    out = []
    for c in pool["classes"]:
        counts = Counter(content_of(p["clip_id"]) for p in c["positives"])
        out.append({
            "name": c["name"], "prompts": c.get("prompts", []), "kept": len(c["positives"]),
            "score_min": c.get("score_min"), "score_mean": c.get("score_mean"), "score_max": c.get("score_max"),
            "by_content": dict(counts.most_common()),
        })
    return out


def to_markdown(rows: list[dict]) -> str:
    """A table: class, prompt, kept, cosine range (mean), source contents with counts."""
    lines = ["| class | prompt | kept | cosine min..max (mean) | source contents (captions) |", "|---|---|---:|---|---|"]
    for r in rows:
        contents = ", ".join(f"{k} {v}" for k, v in r["by_content"].items())
        cosine = f"{r['score_min']:.3f}..{r['score_max']:.3f} ({r['score_mean']:.3f})" if r["score_min"] is not None else "-"
        lines.append(f"| {r['name']} | {' / '.join(r['prompts'])} | {r['kept']} | {cosine} | {contents} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Summarise a mining pool; writes OUT.md and OUT.json (the driver's mark of done, last) and
    prints the table. Exit 2 on a missing or malformed pool."""
    p = argparse.ArgumentParser(prog="python -m mdm_kinemic.bench.mining_summary", description=__doc__.split("\n")[0])
    p.add_argument("pool", type=Path, help="mining_pool.json of a train_fewshot run")
    p.add_argument("--out", required=True, type=Path, help="output path without suffix")
    args = p.parse_args(argv)
    if not args.pool.is_file():
        p.error(f"{args.pool} not found: run python -m mdm_kinemic.train_fewshot first (it writes mining_pool.json)")
    try:
        pool = json.loads(args.pool.read_text())
        rows = summarise(pool)
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        p.error(f"{args.pool} is not a train_fewshot mining_pool.json ({err}); run train_fewshot again to rewrite it")
    record = {"pool": str(args.pool), "encoder": pool.get("encoder"), "top_k": pool.get("top_k"),
              "corpus_size": pool.get("corpus_size"), "classes": rows}
    table = to_markdown(rows)
    write_record(args.out, record, table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
