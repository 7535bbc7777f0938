"""Every command-line entry point answers --help with its usage and exit status 0.

In process (no interpreter start-up per module): argparse's help formatting is where a stray
'%' in a help string or a bad default fails, and it fails only when a user asks for help.
"""

from __future__ import annotations

import importlib

import pytest

CLI_MODULES = [
    ("mdm_kinemic.data.convert", False),
    ("mdm_kinemic.data.fewshot", False),
    ("mdm_kinemic.viz.preview", False),
    ("mdm_kinemic.har.evaluate", False),
    ("mdm_kinemic.har.results_table", False),
    ("mdm_kinemic.har.evaluator", False),
    ("mdm_kinemic.har.export_pyskl", False),
    ("mdm_kinemic.har.score", False),
    ("mdm_kinemic.bench.bandai", False),
    ("mdm_kinemic.bench.mining_summary", False),
    ("mdm_kinemic.bench.calibrate", False),
    ("mdm_kinemic.bench.pooled_study", False),
    ("mdm_kinemic.bench.compare_studies", False),
    ("mdm_kinemic.viz.loss_curves", False),
    ("mdm_kinemic.render", False),
    ("mdm_kinemic.train_fewshot", False),
    ("mdm_kinemic.synth", False),
    ("mdm_kinemic.export", False),
    ("mdm_kinemic.run", False),
    ("mdm_kinemic.mdm.checkpoints.random_checkpoint", True),
]


@pytest.mark.parametrize(
    "module",
    [pytest.param(name, marks=[pytest.mark.upstream] if needs_upstream else []) for name, needs_upstream in CLI_MODULES],
)
def test_help_prints_usage_and_exits_zero(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(module).main
    try:
        status = main(["--help"])
    except SystemExit as exit_:
        status = exit_.code
    assert status in (0, None)
    out = capsys.readouterr().out
    assert "usage:" in out
