"""Mining summary per class: counts of kept captions by source content, JSON and Markdown."""

from __future__ import annotations

import json

import pytest

from mdm_kinemic.bench.mining_summary import content_of, main, summarise

POOL = {
    "encoder": "minilm", "top_k": 3, "corpus_size": 9,
    "classes": [
        {"index": 0, "name": "runs", "prompts": ["a person runs."], "score_min": 0.4, "score_mean": 0.45, "score_max": 0.5,
         "positives": [{"clip_id": "dataset-1_dash_active_001"}, {"clip_id": "dataset-2_walk_normal_003"},
                       {"clip_id": "dataset-1_dash_tired_001"}]},
        {"index": 1, "name": "waves both hands", "prompts": ["a person waves both hands."], "score_min": 0.8,
         "score_mean": 0.85, "score_max": 0.9, "positives": [{"clip_id": "012314"}]},
    ],
}


def test_content_of_bandai_ids_and_others():
    assert content_of("dataset-2_wave-right-hand_normal_001") == "wave-right-hand"
    assert content_of("012314") == "other"
    # a mirrored clip shows the other side's motion: kept apart from its original's content
    assert content_of("Mdataset-2_wave-left-hand_normal_001") == "wave-left-hand (mirrored)"
    assert content_of("M012314") == "other"


def test_counts_per_class_most_first():
    rows = summarise(POOL)
    assert rows[0]["by_content"] == {"dash": 2, "walk": 1} and list(rows[0]["by_content"]) == ["dash", "walk"]
    assert rows[0]["kept"] == 3 and rows[1]["by_content"] == {"other": 1}
    with pytest.raises(ValueError, match="no 'classes' list"):
        summarise({"encoder": "x"})


def test_cli_writes_json_and_markdown(tmp_path, capsys):
    pool = tmp_path / "mining_pool.json"
    pool.write_text(json.dumps(POOL))
    assert main([str(pool), "--out", str(tmp_path / "mining")]) == 0
    record = json.loads((tmp_path / "mining.json").read_text())
    assert record["top_k"] == 3 and record["classes"][0]["by_content"] == {"dash": 2, "walk": 1}
    md = (tmp_path / "mining.md").read_text()
    assert "| runs | a person runs. | 3 | 0.400..0.500 (0.450) | dash 2, walk 1 |" in md
    assert md in capsys.readouterr().out


def test_a_malformed_pool_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    pool = tmp_path / "mining_pool.json"
    for text in ("{not json", json.dumps({"top_k": 3})):
        pool.write_text(text)
        with pytest.raises(SystemExit) as exit_info:
            main([str(pool), "--out", str(tmp_path / "mining")])
        assert exit_info.value.code == 2
        assert f"{pool} is not a train_fewshot mining_pool.json" in capsys.readouterr().err
    assert not list(tmp_path.glob("mining.*"))
