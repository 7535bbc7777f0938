"""Stick-figure animations and the class grid (the paper's Fig. 4)."""

from __future__ import annotations

import numpy as np
import pytest

from mdm_kinemic.viz.render import GridColumn, as_joints, render_animation, render_grid


def _walk(frames: int = 6) -> np.ndarray:
    """(T, 22, 3): a rest pose, joint j at height j / 20 m, moving 5 cm per frame along x."""
    joints = np.zeros((frames, 22, 3))
    joints[:, :, 1] = np.arange(22) / 20
    joints[:, :, 0] = np.arange(frames)[:, None] * 0.05
    return joints


def test_as_joints_accepts_flat_new_joints_and_rejects_other_shapes():
    flat = _walk().reshape(6, 66)
    np.testing.assert_array_equal(as_joints(flat), _walk())
    for bad in (np.zeros((6, 21, 3)), np.zeros((0, 22, 3)), np.zeros((22, 3))):
        with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
            as_joints(bad)


def test_gif_has_one_frame_per_motion_frame(tmp_path):
    from PIL import Image

    path = render_animation(_walk(6), tmp_path / "a" / "walk.gif", title="a person walks", real=True)
    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (300, 300)
    assert sorted(p.name for p in path.parent.iterdir()) == ["walk.gif"]  # no temporary file left


def test_mp4_is_written_when_ffmpeg_is_available(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    path = render_animation(_walk(4), tmp_path / "walk.mp4")
    assert path.stat().st_size > 0


def test_animation_suffix_must_be_mp4_or_gif(tmp_path):
    with pytest.raises(ValueError, match=r"must end in one of \.mp4, \.gif"):
        render_animation(_walk(), tmp_path / "walk.avi")


def test_grid_has_a_column_per_class_and_a_row_per_sample_under_the_real_row(tmp_path):
    from PIL import Image

    columns = [GridColumn("side kick", _walk(), [_walk(), _walk()]), GridColumn("yawn", None, [_walk()])]
    path = render_grid(columns, tmp_path / "grid.png", cell_size=2.0)
    with Image.open(path) as image:
        assert image.size == (2 * 200, 3 * 200)  # 2 classes x (1 real + 2 generated) rows, 2 in at 100 dpi
        pixels = np.asarray(image.convert("RGB"))
    # the empty real cell of "yawn" (top right, above the next row's title) is blank; that of
    # "side kick" is drawn
    assert (pixels[:150, 200:] < 250).sum() == 0
    assert (pixels[:150, :200] < 250).any(axis=-1).sum() > 500
    with pytest.raises(ValueError, match="at least one column"):
        render_grid([], tmp_path / "none.png")
    with pytest.raises(ValueError, match="must end in .png"):
        render_grid(columns, tmp_path / "grid.jpg")


@pytest.mark.upstream
def test_upstream_plot_draws_the_skeleton_with_current_matplotlib(tmp_path):
    from PIL import Image

    from mdm_kinemic.mdm.upstream.plotting import load_upstream_plotter

    plot = load_upstream_plotter()
    assert plot is not None
    path = render_animation(_walk(3), tmp_path / "walk.gif", title="walk", upstream_plot=plot)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        frame = np.asarray(gif.convert("RGB"))
    # upstream's generated-motion orange (#DD5A37 and kin) below the title: the axes are drawn
    orange = (frame[..., 0] > 180) & (frame[..., 1] < 140) & (frame[..., 2] < 100)
    assert orange[40:].sum() > 50
