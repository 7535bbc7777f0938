"""docs/reliability.md cannot drift: every test its table names exists, every test in
tests/faults/ is named in it, and every row fills its four columns."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "docs" / "reliability.md"
HEADER = "| bad input or fault | command | what the user sees | test |"
TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def table_rows() -> list[list[str]]:
    """The cells of each row of the table under HEADER."""
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        # cells are split on " | " so that a `|` inside backticks of a cell does not count
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def named_tests() -> set[tuple[str, str]]:
    """(path, function) of every test id in the table's test column."""
    return {match for row in table_rows() for match in TEST_ID.findall(row[-1])}


def defined_tests(path: Path) -> set[str]:
    """Names of the test functions a test file defines (module level or in a Test class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f.name for f in node.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")}
    return names


def test_every_row_has_four_filled_columns_and_a_test():
    rows = table_rows()
    assert len(rows) >= 10
    for row in rows:
        assert len(row) == 4 and all(row), row
        assert TEST_ID.findall(row[3]), f"row without a test id: {row[0]}"


def test_every_named_test_exists():
    missing = [f"{path}::{name}" for path, name in sorted(named_tests())
               if not (REPO / path).is_file() or name not in defined_tests(REPO / path)]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_every_fault_test_is_in_the_table():
    named = named_tests()
    this = Path(__file__).resolve()
    unlisted = [f"{path.relative_to(REPO)}::{name}" for path in sorted((REPO / "tests" / "faults").glob("test_*.py"))
                if path.resolve() != this
                for name in sorted(defined_tests(path)) if (str(path.relative_to(REPO).as_posix()), name) not in named]
    assert not unlisted, f"tests/faults tests missing from docs/reliability.md: {unlisted}"
