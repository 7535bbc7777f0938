"""PYSKL-style pre-normalisation and uniform sampling."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.har.preprocess import (
    eval_sample_indices,
    fit_persons,
    gcn_batch,
    pre_normalize,
    uniform_sample_indices,
)
from mdm_kinemic.har.skeleton import HUMANML3D_22, NTU_25


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_prenorm_centres_and_aligns_the_first_frame(make_clips):
    clip = make_clips(1, 20, seed=0).joints[1]
    rng = np.random.default_rng(1)
    turned = clip @ _random_rotation(rng).T + np.array([3.0, -1.0, 2.0])
    out = pre_normalize(turned, HUMANML3D_22)[0]
    np.testing.assert_allclose(out[0, HUMANML3D_22.norm_center], 0.0, atol=1e-6)
    a, b = HUMANML3D_22.norm_xaxis
    shoulders = out[0, a] - out[0, b]
    np.testing.assert_allclose(shoulders / np.linalg.norm(shoulders), [1.0, 0.0, 0.0], atol=1e-5)
    # the whole clip moved rigidly: every pairwise distance is kept
    for t in (0, 7, 19):
        d_in = np.linalg.norm(turned[t][:, None] - turned[t][None], axis=-1)
        d_out = np.linalg.norm(out[t][:, None] - out[t][None], axis=-1)
        np.testing.assert_allclose(d_out, d_in, atol=1e-5)


def test_prenorm_is_invariant_to_the_clip_heading_and_position(make_clips):
    # without noise the rest pose's shoulder line is perpendicular to its spine, which makes the
    # two PYSKL rotations land on one orientation whatever the starting one
    clip = make_clips(1, 12, seed=3, noise=0.0).joints[2]
    rng = np.random.default_rng(4)
    turned = clip @ _random_rotation(rng).T + np.array([0.5, 0.2, -4.0])
    np.testing.assert_allclose(pre_normalize(turned, HUMANML3D_22), pre_normalize(clip, HUMANML3D_22), atol=1e-5)


def test_prenorm_spine_on_z_when_perpendicular_to_the_shoulders():
    # a skeleton whose z-axis joints (0 -> 3) are perpendicular to its shoulder line keeps the
    # spine exactly on +z after the second rotation
    joints = np.zeros((2, 22, 3))
    joints[:, :, 1] = 1.0
    joints[:, 3] = (0.0, 1.5, 0.0)
    joints[:, 16] = (0.3, 1.4, 0.0)
    joints[:, 17] = (-0.3, 1.4, 0.0)
    out = pre_normalize(joints, HUMANML3D_22)[0, 0]
    spine = out[3] - out[0]
    np.testing.assert_allclose(spine / np.linalg.norm(spine), [0.0, 0.0, 1.0], atol=1e-6)


def test_prenorm_centres_on_the_first_frame_only(make_clips):
    # A noise-free body gliding 5 cm per frame along its left (+x): its spine 0 -> 3 lies in the
    # y-z plane, so the rotation onto +z turns about x and keeps x, and the shoulders 16 - 17
    # already point along +x. The centre joint then travels (0.05 t, 0, 0) from the origin, and
    # every joint with it; centring each frame on itself would pin it at the origin.
    clip = make_clips(1, 10, seed=0, noise=0.0).joints[0]
    step = np.array([0.05, 0.0, 0.0])
    moving = clip + np.arange(10)[:, None, None] * step
    out = pre_normalize(moving, HUMANML3D_22)[0]
    path = np.arange(10)[:, None] * step
    np.testing.assert_allclose(out[:, HUMANML3D_22.norm_center], path, atol=1e-6)
    np.testing.assert_allclose(out - out[:1], np.broadcast_to(path[:, None], out.shape), atol=1e-6)


def test_prenorm_drops_absent_frames_and_keeps_absent_joints_at_zero():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(6, 25, 3))
    joints[2] = 0.0
    joints[4, 24] = 0.0
    out = pre_normalize(joints, NTU_25)
    assert out.shape == (1, 5, 25, 3)
    np.testing.assert_array_equal(out[0, 3, 24], 0.0)


def test_prenorm_none_and_bad_input():
    x = np.ones((4, 22, 3), dtype=np.float32)
    np.testing.assert_array_equal(pre_normalize(x, HUMANML3D_22, "none")[0], x)
    with pytest.raises(ValueError, match="mode"):
        pre_normalize(x, HUMANML3D_22, "spine")
    with pytest.raises(ValueError, match="25 joints"):
        pre_normalize(np.ones((4, 25, 3)), HUMANML3D_22)


def test_uniform_sampling_long_clip_takes_one_frame_per_segment():
    rng = np.random.default_rng(0)
    idx = uniform_sample_indices(350, 100, rng)
    bounds = np.arange(101) * 350 // 100
    assert idx.shape == (100,)
    assert np.all(idx >= bounds[:-1]) and np.all(idx < bounds[1:])


def test_uniform_sampling_long_clip_draws_every_offset_of_every_segment():
    # 350 frames into 100 segments of 3 or 4 frames: over 200 draws each segment's frame is
    # random, so every frame of every segment turns up (a miss has odds below 1e-20).
    rng = np.random.default_rng(0)
    seen = np.zeros(350, dtype=bool)
    for _ in range(200):
        seen[uniform_sample_indices(350, 100, rng)] = True
    assert seen.all()


def test_uniform_sampling_medium_clip_skips_the_surplus_frames():
    rng = np.random.default_rng(0)
    idx = uniform_sample_indices(130, 100, rng)
    assert np.all(np.diff(idx) >= 1) and np.all(np.diff(idx) <= 2)
    assert len(set(idx.tolist())) == 100 and idx.max() < 130
    np.testing.assert_array_equal(uniform_sample_indices(100, 100, rng), np.arange(100))


def test_uniform_sampling_medium_clip_skips_over_all_gaps():
    # 130 frames, clip length 100: 30 of the 101 gaps (before each kept frame, and after the
    # last) are skipped, so the last frame is dropped with probability 30/101 per draw.
    rng = np.random.default_rng(0)
    last = [uniform_sample_indices(130, 100, rng)[-1] for _ in range(100)]
    assert set(last) == {128, 129}
    assert 15 < last.count(128) < 45  # 100 * 30 / 101 = 29.7 expected


def test_uniform_sampling_short_clip_loops():
    rng = np.random.default_rng(0)
    idx = uniform_sample_indices(30, 100, rng)
    start = idx[0]
    np.testing.assert_array_equal(idx, (start + np.arange(100)) % 30)


def test_eval_sampling_is_deterministic_and_spreads_short_clip_starts():
    np.testing.assert_array_equal(eval_sample_indices(250, 100), eval_sample_indices(250, 100))
    clips = eval_sample_indices(40, 100, num_clips=4)
    assert clips.shape == (4, 100)
    np.testing.assert_array_equal(clips[:, 0], [0, 10, 20, 30])


@pytest.mark.parametrize("num_frames", [130, 250])
def test_eval_sampling_uses_pyskl_test_seed_255(num_frames):
    # PYSKL's UniformSampleFrames seeds test-time sampling with 255; two clips share one generator.
    rng = np.random.default_rng(255)
    expected = [uniform_sample_indices(num_frames, 100, rng) for _ in range(2)]
    np.testing.assert_array_equal(eval_sample_indices(num_frames, 100, num_clips=2), np.stack(expected))


def test_gcn_batch_layout():
    clips = [np.arange(5 * 22 * 3, dtype=np.float32).reshape(1, 5, 22, 3)] * 2
    out = gcn_batch(clips, [np.array([4, 0, 2]), np.array([1, 1, 1])])
    assert out.shape == (2, 1, 3, 22, 3)
    np.testing.assert_array_equal(out[0, 0, 0], clips[0][0, 4])
    np.testing.assert_array_equal(out[1, 0, 2], clips[0][0, 1])


def test_fit_persons_keeps_the_first_bodies_and_pads_with_zero_bodies():
    two = np.stack([np.full((4, 22, 3), 1.0), np.full((4, 22, 3), 2.0)])
    np.testing.assert_array_equal(fit_persons(two, 1), two[:1])
    padded = fit_persons(two[:1], 3)
    assert padded.shape == (3, 4, 22, 3) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[0], two[0])
    assert not padded[1:].any()
    with pytest.raises(ValueError, match="persons must be >= 1"):
        fit_persons(two, 0)
