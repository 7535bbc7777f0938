"""Which source captions can be priors, and the checks around mining (upstream-free)."""

from __future__ import annotations

import pytest

from mdm_kinemic.core.mining import Caption, MinedPositive, MiningResult
from mdm_kinemic.training.soft_positives import (
    MiningRunSettings,
    apply_min_similarity,
    check_corpus,
    usable_captions,
)

FRAMES = {"a": 100, "b": 30}


def test_usable_captions_keeps_long_enough_spans_and_counts_the_rest():
    captions = [
        Caption("a", "whole a"),                 # 100 frames: kept
        Caption("b", "whole b"),                 # 30 frames < 40: dropped
        Caption("a", "late span", 80, 200),      # clipped to 80..100 = 20 frames: dropped
        Caption("a", "good span", 10, 60),       # 50 frames: kept
        Caption("a", "past the end", 120, 160),  # starts after the clip: dropped
        Caption("a", "clipped but long", 50, 300),  # 50..100: kept, end clipped
    ]
    kept, report = usable_captions(captions, FRAMES.__getitem__, min_frames=40)
    assert [c.text for c in kept] == ["whole a", "good span", "clipped but long"]
    assert kept[2].end_frame == 100
    assert report.total == 6 and report.kept == 3
    assert report.dropped == {"shorter than 40 frames": 2, "sub-span outside its clip or empty": 1}
    assert "dropped 2: shorter than 40 frames" in "\n".join(report.lines())


def result(scores: list[list[float]]) -> MiningResult:
    return MiningResult(
        class_names=["side kick", "wave"], prompts=[("p0",), ("p1",)],
        positives=[[MinedPositive(Caption(f"c{i}", f"t{i}"), s) for i, s in enumerate(row)] for row in scores],
        encoder_identity="toy", top_k=3, unit="caption", corpus_size=3,
    )


def test_min_similarity_drops_low_positives():
    kept = apply_min_similarity(result([[0.9, 0.5, 0.1], [0.7, 0.3, 0.2]]), 0.3)
    assert [[p.score for p in row] for row in kept.positives] == [[0.9, 0.5], [0.7, 0.3]]


def test_class_without_a_caption_above_the_minimum_is_an_error():
    with pytest.raises(ValueError, match=r"class 'wave' \(best: 't0' at 0.200.*--min_similarity"):
        apply_min_similarity(result([[0.9], [0.2]]), 0.25)


def test_empty_corpus_is_an_error_naming_the_folder():
    with pytest.raises(ValueError, match="the source corpus /data/src holds no usable caption: it needs texts/"):
        check_corpus([], "/data/src")


@pytest.mark.parametrize("kwargs, message", [
    ({"mining_encoder": "bert"}, "mining_encoder must be clip or minilm"),
    ({"min_similarity": 1.5}, r"min_similarity must lie in \[-1, 1\]"),
])
def test_mining_run_settings_validate(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiningRunSettings(**kwargs)


def test_kinematic_rerank_rejects_the_other_sides_waves(wave):
    """A one-sided class ("waves the left hand") whose text top-k is half right-hand waves (text
    encoders barely tell the sides apart): DTW against the left-hand shots keeps only left waves."""
    from mdm_kinemic.core.kinematic_rerank import KinematicRerankSettings
    from mdm_kinemic.core.mining import MinedPositive
    from mdm_kinemic.data.hml_vec import joints_to_hml_vec
    from mdm_kinemic.training.soft_positives import rerank_soft_positives

    shots = [joints_to_hml_vec(wave("left", frames=50 + 5 * k, turn=0.01 * k, noise=0.005, period=12 + k, seed=k))
             for k in range(4)]
    source, positives = {}, []
    for k in range(8):
        side = "right" if k % 2 == 0 else "left"  # the text ranks every right wave above a left one
        clip_id = f"{side}{k}"
        source[clip_id] = joints_to_hml_vec(wave(side, frames=40 + 7 * k, turn=-0.02 + 0.01 * k, noise=0.005,
                                                 period=11 + k, seed=10 + k))
        span = (10, 45) if k == 7 else (0, 0)  # a sub-span is cut from its clip
        positives.append(MinedPositive(Caption(clip_id, f"a person waves the {side} hand", *span), 0.98 - 0.01 * k))
    result = MiningResult(["waves the left hand"], [("a person waves the left hand.",)], [positives], "enc", 8,
                          "caption", 8)
    kept, reports = rerank_soft_positives(result, shots, [0] * 4, source.__getitem__,
                                          KinematicRerankSettings(kinematic_rerank="dtw", rerank_keep=0.5))
    assert sorted(p.caption.clip_id for p in kept.positives[0]) == ["left1", "left3", "left5", "left7"]
    distances = reports[0].distances
    assert max(distances[1::2]) < 0.5 * min(distances[0::2])  # a wide margin, not a coin toss
    # without re-ranking, the text's top half would be right waves 2 to 1
    assert [p.caption.clip_id for p in result.positives[0][:4]] == ["right0", "left1", "right2", "left3"]
    # the report counts each source caption's candidates and kept windows
    from mdm_kinemic.core.kinematic_rerank import rerank_report

    by_caption = rerank_report(result, reports, KinematicRerankSettings(kinematic_rerank="dtw"))["classes"][0]["by_caption"]
    assert by_caption == [{"text": "a person waves the left hand", "candidates": 4, "kept": 4},
                          {"text": "a person waves the right hand", "candidates": 4, "kept": 0}]
