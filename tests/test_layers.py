"""The package's layers hold (setup.cfg's import-linter contracts) and no module imports itself
through others, deferred imports (inside functions) included."""

from __future__ import annotations

import logging
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"


def test_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    # import-linter configures logging with dictConfig, which disables every logger that exists;
    # the other tests read the package's log records, so their state is put back
    loggers = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    disabled = [logger.disabled for logger in loggers]
    try:
        status = lint_imports(config_filename=str(SETUP_CFG), no_cache=True)
    finally:
        for logger, was_disabled in zip(loggers, disabled):
            logger.disabled = was_disabled
    report = capsys.readouterr().out
    # the report names each offending import as "importer -> imported (l.N)"
    assert status == 0, report


def _cycles(graph: grimp.ImportGraph) -> list[str]:
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                found.append(" -> ".join((importer, *back)))
    return found


def test_no_import_circles() -> None:
    graph = grimp.build_graph("mdm_kinemic")
    assert _cycles(graph) == []


def test_the_circle_finder_reports_a_circle() -> None:
    graph = grimp.build_graph("mdm_kinemic")
    graph.add_import(importer="mdm_kinemic.data.labels", imported="mdm_kinemic.synth")
    cycles = _cycles(graph)
    assert any(c.startswith("mdm_kinemic.data.labels -> mdm_kinemic.synth") for c in cycles)
