"""The calibration pooled over splits: configurations every split holds, differences averaged over splits."""

from __future__ import annotations

import json

import pytest

from mdm_kinemic.bench.calibrate import BASELINE, PAIRED_AT_LEVEL, PAIRED_VS_BASELINE
from mdm_kinemic.bench.pooled_study import main
from mdm_kinemic.bench.summary import MDM_LORA
from study_records import RIGHT, WRONG, har_run, write_study  # tests/bench/study_records.py


def test_differences_average_over_splits_for_configurations_every_split_holds(tmp_path, capsys):
    # every clip right or every clip wrong: each split's difference is the same in every resample
    # split a: Full and dww=off 100, MDM + LoRA 0, real only 0; split b (other clips): Full 0, dww=off 100,
    # MDM + LoRA 0, real only 100; guidance=1.0: a 100, b 0 and 100; MDM + LoRA at 1.0: 0
    write_study(tmp_path / "a", {MDM_LORA: [har_run([WRONG, WRONG])] * 2, BASELINE: [har_run([RIGHT, RIGHT])] * 2,
                            "dww=off": [har_run([RIGHT, RIGHT])] * 2, "guidance=1.0": [har_run([RIGHT, RIGHT])] * 2,
                            "mdm_lora@guidance=1.0": [har_run([WRONG, WRONG])] * 2}, har_run([WRONG, WRONG]))
    b_ids = ("p", "q", "r", "s")
    write_study(tmp_path / "b", {MDM_LORA: [har_run([WRONG, WRONG], b_ids)] * 2, BASELINE: [har_run([WRONG, WRONG], b_ids)] * 2,
                            "dww=off": [har_run([RIGHT, RIGHT], b_ids)] * 2, "guidance=1.0": [har_run([WRONG, RIGHT], b_ids)] * 2,
                            "mdm_lora@guidance=1.0": [har_run([WRONG, WRONG], b_ids)] * 2}, har_run([RIGHT, RIGHT], b_ids))
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "pooled")]) == 0
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["splits"] == ["a", "b"] and list(pooled["configs"]) == [MDM_LORA, BASELINE, "dww=off", "guidance=1.0",
                                                                   "mdm_lora@guidance=1.0"]
    full, off = pooled["configs"][BASELINE], pooled["configs"]["dww=off"]
    assert full["balanced_median_per_split"] == {"a": 100.0, "b": 0.0} and full["balanced_median_mean"] == 50.0
    # Full - MDM + LoRA: a +100, b 0 -> +50; vs real only: a +100, b -100 -> 0
    assert full["paired_vs_mdm_lora"] == {"mean": 50.0, "ci95": [50.0, 50.0], "resolved": True}
    assert full["paired_vs_real_only"] == {"mean": 0.0, "ci95": [0.0, 0.0], "resolved": False}
    assert PAIRED_VS_BASELINE not in full
    assert off[PAIRED_VS_BASELINE] == {"mean": 50.0, "ci95": [50.0, 50.0], "resolved": True}  # a 0, b +100
    assert PAIRED_AT_LEVEL not in off
    # at the level: a +100, b (0 + 100) / 2 = +50 -> +75; b's two recogniser seeds differ, so its resamples vary
    at_level = pooled["configs"]["guidance=1.0"][PAIRED_AT_LEVEL]
    assert at_level["mean"] == 75.0 and 50.0 <= at_level["ci95"][0] <= 75.0 <= at_level["ci95"][1] <= 100.0
    assert "| dww=off | 100.00 | 100.00 | 100.00 | +100.00 [+100.00, +100.00] ✓ |" in capsys.readouterr().out
    assert (tmp_path / "pooled.md").read_text().startswith("Calibration pooled over the splits a, b")


def test_a_split_without_its_study_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "pooled")]) == 2
    assert "calibration/study.json does not exist: run python -m mdm_kinemic.bench.calibrate --bench" in capsys.readouterr().err
    assert not list(tmp_path.glob("pooled.*"))
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "a"), "--out", str(tmp_path / "pooled")])
    assert exit_info.value.code == 2 and "at least two split folders" in capsys.readouterr().err
