"""Records of calibration studies for the tests of pooled_study and compare_studies: har_results.json runs
of two recogniser seeds on four validation clips, and split folders whose study wrote them.

pytest puts this folder on sys.path (rootdir import mode, no __init__.py), so tests import it by name.
"""

from __future__ import annotations

import json

import numpy as np

from mdm_kinemic.bench.calibrate import plan, study_summary
from mdm_kinemic.bench.presets import PRESETS
from mdm_kinemic.bench.summary import REAL_ONLY
from mdm_kinemic.har.stats import summarize_seeds

LABELS = [0, 0, 1, 1]
RIGHT, HALF, WRONG = [0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 0, 0]   # balanced 100, 75, 0


def har_run(predictions: list[list[int]], test_ids=("w", "x", "y", "z")) -> dict:
    """A har_results.json run of two recogniser seeds on four validation clips."""
    balanced = [100 * float(((np.array(p) == LABELS)[:2].mean() + (np.array(p) == LABELS)[2:].mean()) / 2)
                for p in predictions]
    return {"classes": ["a", "b"], "test_ids": list(test_ids), "test_labels": LABELS, "seeds": [0, 1],
            "test_predictions_per_seed": predictions, "converged_per_seed": [True, True],
            "balanced_accuracy_final_epoch": summarize_seeds(balanced).to_dict(),
            "top1_final_epoch": summarize_seeds(balanced).to_dict()}


def write_study(split, runs: dict[str, list[dict]], real: dict) -> None:
    """A split folder whose calibration wrote these runs (one per few-shot seed) and its study.json."""
    root = split / "calibration"
    for name, seeds in runs.items():
        for s, run in enumerate(seeds):
            folder = root / name / f"seed{s}" / "har"
            folder.mkdir(parents=True)
            (folder / "har_results.json").write_text(json.dumps({"runs": {"real_plus_synthetic": run}}))
    (root / REAL_ONLY).mkdir(parents=True)
    (root / REAL_ONLY / "har_results.json").write_text(json.dumps({"runs": {REAL_ONLY: real}}))
    configs = [c for c in plan(PRESETS["cpu"], ["dww", "guidance"]) if c.name in runs]
    (root / "study.json").write_text(json.dumps(study_summary(configs, runs, {}, real)))
