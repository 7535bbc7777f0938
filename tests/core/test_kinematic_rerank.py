"""Kinematic re-ranking: the batched DTW against a plain loop, and what re-ranking keeps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mdm_kinemic.core.kinematic_rerank import (
    KinematicRerankSettings,
    dtw_distances,
    rerank_by_motion,
    activity_distances,
    activity_profiles,
    rerank_markdown,
    rerank_report,
)
from mdm_kinemic.core.mining import Caption, MinedPositive, MiningResult


def _loop_dtw(a: np.ndarray, b: np.ndarray, band: float) -> float:
    """Textbook symmetric DTW: D[i][j] = min(D[i-1][j-1] + 2 c, D[i-1][j] + c, D[i][j-1] + c) over
    allowed cells, divided by n + m."""
    n, m = len(a), len(b)
    acc = [[math.inf] * (m + 1) for _ in range(n + 1)]
    acc[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            allowed = abs(i / n - j / m) <= band + 1e-12 or (i, j) == (1, 1)
            if not allowed:
                continue
            cost = float(np.mean(np.linalg.norm(a[i - 1] - b[j - 1], axis=-1)))
            acc[i][j] = min(acc[i - 1][j - 1] + 2 * cost, acc[i - 1][j] + cost, acc[i][j - 1] + cost)
    return acc[n][m] / (n + m)


@pytest.mark.parametrize("band", [1.0, 0.3])
def test_batched_dtw_equals_the_loop(band):
    rng = np.random.default_rng(0)
    queries = [rng.normal(size=(n, 4, 3)) for n in (5, 9, 1)]
    references = [rng.normal(size=(m, 4, 3)) for m in (7, 3)]
    got = dtw_distances(queries, references, band=band, chunk=4)
    expected = [[_loop_dtw(q, r, band) for r in references] for q in queries]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_dtw_is_zero_for_a_time_warped_copy_and_grows_with_offset():
    base = np.random.default_rng(1).normal(size=(6, 2, 3))
    slowed = np.repeat(base, 2, axis=0)  # the same motion at half speed
    shifted = base + np.array([0.1, 0.0, 0.0])
    d = dtw_distances([base], [base, slowed, shifted])[0]
    assert d[0] == 0.0 and d[1] == 0.0
    assert d[2] == pytest.approx(0.1)  # every aligned frame 0.1 m apart, diagonal path


def test_dtw_rejects_mixed_layouts():
    with pytest.raises(ValueError, match="joint layout"):
        dtw_distances([np.zeros((3, 2, 3))], [np.zeros((3, 4, 3))])


def _result(n: int) -> MiningResult:
    positives = [MinedPositive(Caption(f"c{i}", f"caption {i}"), 0.9 - 0.01 * i) for i in range(n)]
    return MiningResult(["a"], [("p",)], [positives], "enc", n, "caption", n)


def test_rerank_keeps_the_closest_share_in_distance_order():
    # candidate i sits i * 0.1 m from the shot, except candidate 0 (the text's best), 1 m away
    shot = np.zeros((4, 2, 3))
    offsets = {"c0": 1.0, "c1": 0.1, "c2": 0.2, "c3": 0.3, "c4": 0.4}
    settings = KinematicRerankSettings(kinematic_rerank="dtw", rerank_keep=0.5)
    kept, reports = rerank_by_motion(_result(5), [[shot]], lambda c: shot + [offsets[c.clip_id], 0.0, 0.0], settings)
    assert [p.caption.clip_id for p in kept.positives[0]] == ["c1", "c2", "c3"]  # ceil(0.5 * 5)
    assert [p.score for p in kept.positives[0]] == pytest.approx([0.89, 0.88, 0.87])  # text scores kept
    assert reports[0].kept == [1, 2, 3]
    np.testing.assert_allclose(reports[0].distances, [1.0, 0.1, 0.2, 0.3, 0.4])
    report = rerank_report(_result(5), reports, settings)
    entry = report["classes"][0]
    assert entry["kept"] == 3 and entry["candidates"] == 5
    assert entry["distance_kept_max"] == pytest.approx(0.3) and entry["distance_dropped_min"] == pytest.approx(0.4)
    assert entry["kept_of_text_top_kept"] == 2  # text ranks 2 and 3 of the text top-3
    assert [p["rank"] for p in entry["candidates_by_text_rank"]] == [None, 1, 2, 3, None]
    assert "| 1 | 0.900 | 1.000 | dropped | c0 |" in rerank_markdown(report)
    # one caption per candidate here: each counted once, kept or not
    assert entry["by_caption"][:2] == [{"text": "caption 0", "candidates": 1, "kept": 0},
                                       {"text": "caption 1", "candidates": 1, "kept": 1}]
    assert "| caption 1 | 1 | 1 |" in rerank_markdown(report)


def test_activity_profile_is_each_joints_share_of_the_speed():
    # joint 0 moves 0.1 m per frame, joint 1 0.3 m, joint 2 stays: shares 1/4, 3/4, 0
    moving = np.zeros((3, 3, 3))
    moving[:, 0, 0] = [0.0, 0.1, 0.2]
    moving[:, 1, 2] = [0.0, 0.3, 0.6]
    still = np.ones((5, 3, 3))
    np.testing.assert_allclose(activity_profiles([moving, still, moving[:1]]),
                               [[0.25, 0.75, 0.0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]])
    # tempo and amplitude cancel: twice as slow and 3x as large is the same profile
    slower_larger = 3.0 * np.repeat(moving, 2, axis=0)
    mirrored = moving[:, [1, 0, 2]]  # the shares swap joints: total variation |1/4 - 3/4| = 1/2
    np.testing.assert_allclose(activity_distances([slower_larger, mirrored], [moving]), [[0.0], [0.5]], atol=1e-12)
    with pytest.raises(ValueError, match="one joint layout"):
        activity_profiles([np.zeros((3, 2, 3)), np.zeros((3, 4, 3))])


def test_activity_keeps_the_shots_side_where_dtw_keeps_their_body_size(wave):
    """Left-hand shots; candidates are right-hand waves of the shots' size and left-hand waves of a
    body 1.5x as large (root-relative, scaled about the root). DTW compares poses, so size outweighs
    side; the activity profile compares which joints move."""
    def relative(joints: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return scale * (joints[:, 1:] - joints[:, :1])

    shots = [relative(wave("left", frames=50 + 5 * k, turn=0.0, period=12 + k, seed=k)) for k in range(3)]
    motions, positives = {}, []
    for k in range(6):
        side = "right" if k % 2 == 0 else "left"
        motions[f"{side}{k}"] = relative(wave(side, frames=45 + 4 * k, turn=0.0, period=11 + k, seed=10 + k),
                                         1.0 if side == "right" else 1.5)
        positives.append(MinedPositive(Caption(f"{side}{k}", f"a person waves the {side} hand"), 0.98 - 0.01 * k))
    result = MiningResult(["waves the left hand"], [("p",)], [positives], "enc", 6, "caption", 6)
    kept = {}
    for method in ("dtw", "activity"):
        settings = KinematicRerankSettings(kinematic_rerank=method, rerank_keep=0.5)
        reranked, _ = rerank_by_motion(result, [shots], lambda c: motions[c.clip_id], settings)
        kept[method] = sorted(p.caption.clip_id for p in reranked.positives[0])
    assert kept == {"dtw": ["right0", "right2", "right4"], "activity": ["left1", "left3", "left5"]}


def test_rerank_off_changes_nothing():
    result = _result(3)
    kept, reports = rerank_by_motion(result, [[np.zeros((2, 1, 3))]], lambda c: np.zeros((2, 1, 3)),
                                     KinematicRerankSettings())
    assert kept is result and reports == []


@pytest.mark.parametrize("field, value", [("kinematic_rerank", "mic"), ("rerank_keep", 0.0), ("rerank_keep", 1.5),
                                          ("rerank_band", 0.0), ("rerank_stride", 0), ("rerank_aggregate", "max")])
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        KinematicRerankSettings(**{field: value})
