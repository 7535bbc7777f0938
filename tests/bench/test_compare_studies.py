"""Two studies of one split's targets compared run by run (e.g. with and without mirrored source clips)."""

from __future__ import annotations

import json

from mdm_kinemic.bench.calibrate import BASELINE
from mdm_kinemic.bench.compare_studies import main
from mdm_kinemic.bench.summary import MDM_LORA, REAL_ONLY
from study_records import HALF, RIGHT, WRONG, har_run, write_study  # tests/bench/study_records.py

SETTINGS = {"target_contents": ["wave-right-hand", "run"], "shots": 10, "seed": 0}


def _split(folder, runs, real, fewshot_steps=150, **settings) -> None:
    write_study(folder, runs, real)
    (folder / "split.json").write_text(json.dumps({"settings": {**SETTINGS, **settings}}))
    (folder / "status.json").write_text(json.dumps({"preset": {"fewshot_steps": fewshot_steps, "har_epochs": 25}}))


def test_each_configuration_is_paired_run_by_run_on_the_same_clips(tmp_path, capsys):
    # first: Full 100, MDM + LoRA 0; second (mirrored source): Full 75 then 100, MDM + LoRA 100
    _split(tmp_path / "plain", {MDM_LORA: [har_run([WRONG, WRONG])] * 2, BASELINE: [har_run([RIGHT, RIGHT])] * 2},
           har_run([HALF, HALF]))
    _split(tmp_path / "mirrored_source", {MDM_LORA: [har_run([RIGHT, RIGHT])] * 2,
                                         BASELINE: [har_run([HALF, HALF]), har_run([RIGHT, RIGHT])]},
           har_run([HALF, HALF]), mirror_source=True)
    out = tmp_path / "effect"
    assert main([str(tmp_path / "plain"), str(tmp_path / "mirrored_source"), "--out", str(out)]) == 0
    effect = json.loads(out.with_suffix(".json").read_text())
    assert effect["studies"] == ["plain", "mirrored_source"] and effect["settings"]["mirrored_source"]["mirror_source"]
    assert effect["only_in"] == {"plain": [], "mirrored_source": []}
    assert list(effect["configs"]) == [MDM_LORA, BASELINE, REAL_ONLY]
    lora, full, real = (effect["configs"][n] for n in (MDM_LORA, BASELINE, REAL_ONLY))
    assert lora["paired_second_minus_first"] == {"mean": 100.0, "ci95": [100.0, 100.0], "resolved": True}
    # Full: seed 0 -25 on both recogniser seeds (one clip of class 0 misread), seed 1 0 -> -12.5; a
    # resample that draws that clip twice within its class gives -50, one that draws seed 1 only 0
    paired = full["paired_second_minus_first"]
    assert paired["mean"] == -12.5 and -50.0 <= paired["ci95"][0] < -12.5 and paired["ci95"][1] == 0.0
    assert full["balanced_median"] == {"plain": 100.0, "mirrored_source": 87.5}
    assert full["paired_vs_mdm_lora"]["plain"]["mean"] == 100.0 and full["paired_vs_mdm_lora"]["mirrored_source"]["mean"] == -12.5
    assert real["paired_second_minus_first"]["mean"] == 0.0  # the same real clips and seeds: no difference
    table = capsys.readouterr().out
    assert "| mdm_lora | 0.00 | 100.00 | +100.00 [+100.00, +100.00] ✓ |" in table
    assert out.with_suffix(".md").read_text() == table


def test_studies_of_other_targets_or_clips_are_refused(tmp_path, capsys):
    runs = {MDM_LORA: [har_run([WRONG, WRONG])] * 2, BASELINE: [har_run([RIGHT, RIGHT])] * 2}
    _split(tmp_path / "a", runs, har_run([HALF, HALF]))
    _split(tmp_path / "b", runs, har_run([HALF, HALF]), shots=5)
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "effect")]) == 2
    assert "differ in shots" in capsys.readouterr().err
    other_clips = {n: [har_run(p, test_ids=("p", "q", "r", "s")) for p in ([WRONG, WRONG], [RIGHT, RIGHT])] for n in runs}
    _split(tmp_path / "c", other_clips, har_run([HALF, HALF], test_ids=("p", "q", "r", "s")))
    assert main([str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "effect")]) == 2
    assert "differ in test_ids" in capsys.readouterr().err
    _split(tmp_path / "d", runs, har_run([HALF, HALF]), fewshot_steps=300)
    assert main([str(tmp_path / "a"), str(tmp_path / "d"), "--out", str(tmp_path / "effect")]) == 2
    assert "other sizes (fewshot_steps: 150 and 300)" in capsys.readouterr().err
    _split(tmp_path / "e", {"guidance=1.0": runs[BASELINE]}, har_run([HALF, HALF]))
    (tmp_path / "e" / "calibration" / "real_only" / "har_results.json").unlink()
    assert main([str(tmp_path / "a"), str(tmp_path / "e"), "--out", str(tmp_path / "effect")]) == 2
    assert "no configuration is in both studies (a: mdm_lora, full, real_only; e: guidance=1.0)" in capsys.readouterr().err
    assert main([str(tmp_path / "a"), str(tmp_path / "nowhere"), "--out", str(tmp_path / "effect")]) == 2
    assert "split.json does not exist" in capsys.readouterr().err
    assert not list(tmp_path.glob("effect.*"))
