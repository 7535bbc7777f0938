"""Every ``python -m mdm_kinemic...`` command quoted in README.md and docs/*.md parses with its tool's parser.

The commands are read from fenced code blocks (continuation lines joined, comments dropped)
and from inline code spans. Upper-case placeholders (DIR, SAVE/model000005000.pt, OUT/...) are
values like any other (a choice too: ``--only STAGE``), and of alternatives ``bvh|smpl`` the
first is taken; ``[`` ``]`` around
optional flags are dropped. A command is complete (its required flags too must be there) in a
code block and in README.md; it is a mention (only the flags it shows must exist and take the
values it gives) in the prose and tables of docs/*.md, and wherever ``...`` elides flags.
Each command is parsed by its own ``main``: ``ArgumentParser.parse_args`` is replaced by one
that parses and stops, so nothing runs. ``python -m mdm_kinemic.run SCRIPT`` passes the
script's flags to upstream's own parser, which needs upstream: only SCRIPT and the runner's
own flags are checked there.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"python -m (mdm_kinemic[\w.]*)(.*)")
INLINE = re.compile(r"`(python -m mdm_kinemic[^`]*)`")
SHELL_ENDS = ("&&", "||", ";", "|", ">", "2>&1", ">>")


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, logical line) of every fenced code block, continuation lines joined."""
    lines, inside, pending, start = [], False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append((start, pending + line))
        pending = ""
    return lines


def _commands() -> list[tuple[str, str, list[str], bool]]:
    """(where, module, argv, complete) of every quoted command."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        candidates = [(number, line, True) for number, line in _code_lines(text)]
        for number, line in enumerate(text.splitlines(), 1):
            candidates += [(number, m.group(1), doc.name == "README.md") for m in INLINE.finditer(line)]
        for number, line, complete in candidates:
            match = COMMAND.search(line)
            if match is None:
                continue
            where = f"{doc.relative_to(REPO_ROOT)}:{number}"
            try:
                words = shlex.split(match.group(2), comments=True)
            except ValueError as err:  # an unbalanced quote: reported by the test
                found.append((where, match.group(1), [f"shell: {err}"], complete))
                continue
            tokens = []
            for token in words:
                if token in SHELL_ENDS:
                    break
                token = token.strip("[]")
                if token == "...":
                    complete = False
                elif token:
                    tokens.append(token.split("|")[0] if "|" in token and not token.startswith("-") else token)
            found.append((where, match.group(1), tokens, complete))
    return found


COMMANDS = _commands()


PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")


class _ChoicesOrPlaceholder(list):
    """An option's choices, plus any upper-case placeholder (``--only STAGE``)."""

    def __contains__(self, value: object) -> bool:
        return super().__contains__(value) or (isinstance(value, str) and PLACEHOLDER.fullmatch(value) is not None)


class _Parsed(Exception):
    """Raised by the replaced parse_args with the namespace: the command parsed, nothing ran."""


def test_the_docs_quote_commands_of_every_front():
    modules = {module for _, module, _, _ in COMMANDS}
    assert {"mdm_kinemic.train_fewshot", "mdm_kinemic.synth", "mdm_kinemic.run", "mdm_kinemic.data.convert",
            "mdm_kinemic.har.evaluate"} <= modules


@pytest.mark.parametrize(("where", "module", "argv", "complete"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_quoted_command_parses(where, module, argv, complete, monkeypatch, capsys):
    assert not (argv and argv[0].startswith("shell: ")), f"{where}: {argv[0]}"
    if module == "mdm_kinemic.run":
        if not argv and not complete:
            return
        run = importlib.import_module(module)
        assert argv and (argv[0] in run.SCRIPTS or argv[0] == "SCRIPT"), f"{where}: unknown upstream script {argv[:1]}"
        # the rest goes to upstream's own parser, which needs upstream: see the module docstring
        run._runner_parser().parse_known_args(argv[1:])
        return
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        self.allow_abbrev = False  # a doc must spell the flag, not a prefix of it
        for action in self._actions:
            if action.choices is not None and not isinstance(action.choices, dict):
                action.choices = _ChoicesOrPlaceholder(action.choices)
            if not complete:
                action.required = False
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    try:
        main = importlib.import_module(module).main
    except (ImportError, AttributeError) as err:
        pytest.fail(f"{where}: python -m {module} is not a command ({err})")
    try:
        main(argv)
    except _Parsed:
        return
    except SystemExit as exit_:
        pytest.fail(f"{where}: python -m {module} {shlex.join(argv)} does not parse (exit {exit_.code}): "
                    f"{capsys.readouterr().err.strip()[-500:]}")
    pytest.fail(f"{where}: python -m {module} returned without parsing its arguments")
