"""Mining pictures and loss curves are written as PNG files (upstream-free)."""

from __future__ import annotations

import pytest

from mdm_kinemic.training.run_state import LossLog
from mdm_kinemic.viz.loss_curves import main as loss_curves_main
from mdm_kinemic.viz.loss_curves import plot_loss_curves
from mdm_kinemic.viz.mining_plot import plot_mining

PNG = b"\x89PNG\r\n\x1a\n"


def test_mining_picture_is_a_png(tmp_path):
    attention = [0.05] * 10 + [0.1] * 5
    path = plot_mining(attention, 10, 5, "a man kicks high", "side kick", tmp_path / "a" / "pair.png",
                       dww=0.9, step=3, clip_id="000003")
    assert path.read_bytes().startswith(PNG)
    assert [p.name for p in path.parent.iterdir()] == ["pair.png"]


@pytest.mark.parametrize("attention, start, length", [([], 0, 1), ([0.5, 0.5], 1, 2), ([1.0], -1, 1)])
def test_mining_picture_rejects_windows_outside_the_prior(tmp_path, attention, start, length):
    with pytest.raises(ValueError):
        plot_mining(attention, start, length, "c", "k", tmp_path / "x.png")


def test_loss_curves_from_a_run_folder(tmp_path):
    log = LossLog(tmp_path / "losses.jsonl")
    for step in range(1, 21):
        log.append(step, {"loss": 1.0 / step, "rec_target": 0.5, "dww_mean": 0.9})
    out = tmp_path / "curves.png"
    loss_curves_main([str(tmp_path), "--out", str(out), "--smooth", "5"])
    assert out.read_bytes().startswith(PNG)
    with pytest.raises(ValueError, match="no loss records"):
        plot_loss_curves([], tmp_path / "empty.png")
