"""The no-patch route's collate hook: generate.py's text-prompt batch gets each sample's action."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from mdm_kinemic.mdm.sampling.hooks import SESSION, _with_actions


@pytest.fixture
def session():
    saved = (SESSION.args, SESSION.plugin_active)
    SESSION.args = argparse.Namespace(kinemic_actions=[2, 0],
                                      kinemic_info=SimpleNamespace(class_names=("run", "kick", "stretch")))
    SESSION.plugin_active = True
    yield SESSION
    SESSION.args, SESSION.plugin_active = saved


def test_prompt_batch_gets_the_planned_actions(session):
    batch = [{"inp": 0, "tokens": None, "lengths": 20, "text": "jump"}] * 2
    assert _with_actions(batch) == [
        {"inp": 0, "tokens": None, "lengths": 20, "text": "jump", "action": 2, "action_text": "stretch"},
        {"inp": 0, "tokens": None, "lengths": 20, "text": "jump", "action": 0, "action_text": "run"},
    ]


@pytest.mark.parametrize(
    "batch",
    [
        [{"inp": 0, "text": "jump", "key": "000001"}] * 2,  # a dataset batch
        [{"inp": 0, "action": 1, "action_text": "kick"}] * 2,  # an action batch
        [{"inp": 0, "text": "jump"}] * 3,  # another size than the plan
    ],
)
def test_other_batches_pass_unchanged(session, batch):
    assert _with_actions(batch) is batch


def test_without_a_kinemic_run_nothing_changes():
    saved = SESSION.args
    SESSION.args = None
    try:
        batch = [{"inp": 0, "text": "jump"}] * 2
        assert _with_actions(batch) is batch
    finally:
        SESSION.args = saved


def test_a_prompt_without_humanml3d_gets_the_shipped_statistics(tmp_path, monkeypatch):
    """generate.py of a plain model with --text_prompt, no ./dataset/HumanML3D and no --norm_stats."""
    import numpy as np

    from mdm_kinemic.data.packaged_stats import HUMANML3D_STATS_DIR
    from mdm_kinemic.mdm.sampling.hooks import _prompt_only_loader

    monkeypatch.chdir(tmp_path)  # upstream's root without its dataset
    args = argparse.Namespace(text_prompt="a person walks", norm_stats=None, data_dir="")
    loader = _prompt_only_loader(args, "humanml")
    np.testing.assert_array_equal(loader.dataset.mean, np.load(HUMANML3D_STATS_DIR / "Mean.npy"))
    assert _prompt_only_loader(args, "kit") is None  # KIT's 251 features: none shipped
