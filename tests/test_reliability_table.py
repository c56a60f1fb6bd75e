"""docs/reliability.md is the project's reliability figure: every row must name a test that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
TABLE = ROOT / "docs" / "reliability.md"
TEST_REF = re.compile(r"`?(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`?")


def _rows() -> list[list[str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and not set(cells[0]) <= {"-", " ", ":"} and cells[0] != "area":
            rows.append(cells)
    return rows


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_table_has_at_least_thirty_rows_each_with_an_outcome_and_a_test() -> None:
    rows = _rows()
    assert len(rows) >= 30, f"{len(rows)} rows"
    for cells in rows:
        assert cells[-2], f"row without an outcome: {cells}"
        assert TEST_REF.search(cells[-1]), f"row without a test reference: {cells}"


def test_every_named_test_exists() -> None:
    missing = []
    for cells in _rows():
        for file, name in TEST_REF.findall(cells[-1]):
            path = ROOT / file
            if not path.is_file() or name not in _test_functions(path):
                missing.append(f"{file}::{name}")
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_the_required_kinds_of_fault_are_covered() -> None:
    text = TABLE.read_text(encoding="utf-8").lower()
    for topic in ("truncated", "flipped", "header", "band count", "nan", "out-of-range", "yaml", "path traversal",
                  "symlink", "sigkill", "concurrent", "disk full", "read-only", "database"):
        assert topic in text, f"no row about {topic!r}"
