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


@pytest.fixture()
def drawn(monkeypatch):
    """The figures the plotting functions save (also written as PNG files), drawn and kept open."""
    import matplotlib.pyplot as plt

    from mdm_kinemic.viz import figures, loss_curves, mining_plot

    kept = []

    def keep(fig, path, **kwargs):
        fig.canvas.draw()
        kept.append(fig)
        fig.savefig(path)
        return path

    for module in (loss_curves, mining_plot):
        monkeypatch.setattr(module, "save_png", keep)
    assert figures.save_png is not keep
    yield kept
    for fig in kept:
        plt.close(fig)


def test_few_loss_records_get_whole_step_ticks(tmp_path, drawn):
    records = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3)]  # fewer points than --smooth
    plot_loss_curves(records, tmp_path / "few.png", smooth=10)
    ticks = [t for t in drawn[0].axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("peak", ["start", "end"])
def test_the_mining_legend_leaves_the_curve_uncovered(tmp_path, drawn, peak):
    attention = [0.02] * 40 + [0.2] * 10
    attention = attention if peak == "end" else attention[::-1]
    plot_mining(attention, 40 if peak == "end" else 0, 10, "a man kicks high", "side kick", tmp_path / "p.png")
    ax = drawn[0].axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())
    assert drawn[0].bbox.contains(legend.x1 - 1, legend.y0 + 1)  # and inside the picture
