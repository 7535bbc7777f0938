"""Few-shot batch assembly: every target, one soft pair per target from its class pool (upstream-free)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdm_kinemic.core.mining import Caption
from mdm_kinemic.training.batching import FewShotBatcher, Normaliser, pad_motions

F = 5


def ramp(length: int, offset: float) -> np.ndarray:
    """(length, F) motion whose frame t, feature f holds offset + 10 t + f: every frame is unique."""
    return (offset + 10.0 * np.arange(length)[:, None] + np.arange(F)[None, :]).astype(np.float32)


def identity(motion: np.ndarray) -> np.ndarray:
    return motion.astype(np.float32)


SOURCE = {"walk": ramp(50, 1000.0), "kick": ramp(300, 2000.0), "bow": ramp(30, 3000.0)}
POOLS = [
    [Caption("walk", "a person walks"), Caption("bow", "a person bows")],
    [Caption("kick", "a person kicks", 100, 140)],
]


def make_batcher(seed: int = 0, max_frames: int = 196, **kw) -> FewShotBatcher:
    targets = [ramp(12, 0.0), ramp(20, 100.0), ramp(7, 200.0)]
    return FewShotBatcher(
        target_motions=targets, target_labels=[0, 1, 0], target_text=["p0", "p1", "p0"],
        target_ids=["t0", "t1", "t2"], pools=kw.pop("pools", POOLS), source_motion=SOURCE.__getitem__,
        normalise=kw.pop("normalise", identity), max_frames=max_frames, seed=seed, **kw,
    )


def test_pad_motions_layout_and_zero_padding():
    x0, lengths = pad_motions([ramp(3, 0.0), ramp(5, 50.0)])
    assert x0.shape == (2, F, 1, 5)
    assert lengths.tolist() == [3, 5]
    # x0[b, f, 0, t] = motion_b[t, f]; the padding after a motion's last frame is exactly 0.
    assert x0[0, 2, 0, 1].item() == 10.0 * 1 + 2
    assert x0[1, 4, 0, 4].item() == 50.0 + 40.0 + 4
    assert torch.count_nonzero(x0[0, :, :, 3:]) == 0
    padded, _ = pad_motions([ramp(3, 0.0)], pad_to=8)
    assert padded.shape == (1, F, 1, 8)


@pytest.mark.parametrize("motions, pad_to, message", [
    ([], None, "at least one"),
    ([ramp(3, 0.0), np.zeros((3, F + 1), np.float32)], None, "feature widths"),
    ([ramp(9, 0.0)], 8, "does not fit"),
    ([np.zeros((0, F), np.float32)], None, "0 frames"),
])
def test_pad_motions_rejects(motions, pad_to, message):
    with pytest.raises(ValueError, match=message):
        pad_motions(motions, pad_to)


def test_normaliser_is_z_score_and_validates():
    norm = Normaliser(np.array([1.0, 2.0], np.float32), np.array([2.0, 4.0], np.float32))
    np.testing.assert_allclose(norm(np.array([[3.0, 2.0], [1.0, 10.0]])), [[1.0, 0.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match="strictly positive"):
        Normaliser(np.zeros(2, np.float32), np.array([1.0, 0.0], np.float32))
    with pytest.raises(ValueError, match="features"):
        norm(np.zeros((3, 3)))


def test_batch_holds_every_target_and_a_pool_member_per_target():
    batch, provenance = make_batcher().next_batch()
    assert provenance.target_ids == ["t0", "t1", "t2"]
    assert batch.target_action.tolist() == [0, 1, 0]
    assert batch.target_text == ["p0", "p1", "p0"]
    assert batch.target_lengths.tolist() == [12, 20, 7]
    assert batch.x0_target.shape == (3, F, 1, 20)
    np.testing.assert_array_equal(batch.x0_target[1, :, 0, :].T.numpy(), ramp(20, 100.0))
    for label, pair, text in zip(batch.target_action.tolist(), provenance.soft_pairs, batch.prior_text):
        pool = POOLS[label]
        assert pool[pair.pool_index].clip_id == pair.clip_id and pool[pair.pool_index].text == text
    # The class-1 prior is the kick caption's sub-span, frames 100..139 of the source clip.
    kick = provenance.soft_pairs[1]
    assert (kick.clip_id, kick.start_frame, kick.length) == ("kick", 100, 40)
    assert batch.prior_lengths[1].item() == 40
    np.testing.assert_array_equal(batch.x0_prior[1, :, 0, :40].T.numpy(), SOURCE["kick"][100:140])


def test_long_clips_are_cropped_to_max_frames_at_the_recorded_start():
    pools = [[Caption("kick", "a person kicks")], [Caption("kick", "a person kicks")]]
    batcher = make_batcher(max_frames=64, pools=pools)
    starts = set()
    for _ in range(20):
        batch, provenance = batcher.next_batch()
        for b, pair in enumerate(provenance.soft_pairs):
            assert pair.length == 64 == batch.prior_lengths[b].item()
            expected = SOURCE["kick"][pair.start_frame : pair.start_frame + 64]
            np.testing.assert_array_equal(batch.x0_prior[b, :, 0, :64].T.numpy(), expected)
            starts.add(pair.start_frame)
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 300 - 64


def test_pool_members_are_drawn_uniformly():
    batcher = make_batcher()
    counts = {"walk": 0, "bow": 0}
    for _ in range(400):
        for pair, label in zip(batcher.next_batch()[1].soft_pairs, [0, 1, 0]):
            if label == 0:
                counts[pair.clip_id] += 1
    # 800 draws from two members: a fair coin stays within 5 standard deviations (~71) of 400.
    assert abs(counts["walk"] - 400) < 71, counts


def test_same_seed_same_batches_and_state_round_trip():
    a, b = make_batcher(seed=3), make_batcher(seed=3)
    for _ in range(3):
        assert a.next_batch()[1] == b.next_batch()[1]
    saved = a.state_dict()
    expected = [a.next_batch()[1] for _ in range(5)]
    c = make_batcher(seed=99)
    c.load_state_dict(saved)
    assert [c.next_batch()[1] for _ in range(5)] == expected


def test_normalisation_is_applied_to_both_streams():
    norm = Normaliser(np.full(F, 1.0, np.float32), np.full(F, 2.0, np.float32))
    batch, _ = make_batcher(normalise=norm).next_batch()
    np.testing.assert_allclose(batch.x0_target[0, :, 0, :12].T.numpy(), (ramp(12, 0.0) - 1.0) / 2.0)
    np.testing.assert_allclose(batch.x0_prior[1, :, 0, :40].T.numpy(), (SOURCE["kick"][100:140] - 1.0) / 2.0)


@pytest.mark.parametrize("pools, labels, message", [
    ([[Caption("walk", "w")], []], [0, 1, 0], "class 1 has targets but an empty"),
    ([[Caption("walk", "w")]], [0, 1, 0], "must lie in 0..0"),
])
def test_batcher_rejects_bad_pools(pools, labels, message):
    with pytest.raises(ValueError, match=message):
        FewShotBatcher([ramp(3, 0.0)] * 3, labels, ["p"] * 3, ["a", "b", "c"], pools,
                       SOURCE.__getitem__, identity)


def test_prompt_augmentation_draws_each_targets_text_per_batch():
    from mdm_kinemic.core.prompts import PromptSampler

    sets = [("p0", "p0b", "p0c"), ("p1", "p1b")]
    batcher = make_batcher(seed=1, prompt_sampler=PromptSampler(sets, seed=1))
    texts = [batcher.next_batch()[0].target_text for _ in range(60)]
    assert all(t[0] in sets[0] and t[1] in sets[1] and t[2] in sets[0] for t in texts)
    assert {t[0] for t in texts} == set(sets[0]) and {t[1] for t in texts} == set(sets[1])
    # the prompt stream is separate: the soft pairs are those of a batcher without augmentation
    plain, augmented = make_batcher(seed=2), make_batcher(seed=2, prompt_sampler=PromptSampler(sets, seed=2))
    assert [plain.next_batch()[1] for _ in range(5)] == [augmented.next_batch()[1] for _ in range(5)]
    # a resumed batcher repeats the prompt draws too
    saved = augmented.state_dict()
    expected = [augmented.next_batch()[0].target_text for _ in range(4)]
    resumed = make_batcher(seed=7, prompt_sampler=PromptSampler(sets, seed=7))
    resumed.load_state_dict(saved)
    assert [resumed.next_batch()[0].target_text for _ in range(4)] == expected
