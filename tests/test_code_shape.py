"""The house limits on size, for the whole library (issue 24): no function over 80 lines, no module over
400 lines, so that each reads top to bottom. The studio's own test (test_studio.py) came first; this one
covers fashion_rag/ and app.py. The allowlists name what is not split yet; they may only shrink."""

from __future__ import annotations

import ast
from pathlib import Path

from fashion_rag.config import REPO_ROOT

MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400

# Not split yet: empty since issue 24. An entry must still be over its limit, so that a split removes it here.
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS: set[str] = set()


def library_files() -> list[Path]:
    return [*sorted((REPO_ROOT / "fashion_rag").rglob("*.py")), REPO_ROOT / "app.py"]


def long_functions(path: Path, root: Path = REPO_ROOT) -> dict[str, int]:
    """'<file>:<function>' -> lines, for every function (methods and nested ones too) over the limit."""
    name = path.relative_to(root).as_posix()
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found[f"{name}:{node.name}"] = lines
    return found


def test_no_function_over_80_lines():
    found: dict[str, int] = {}
    for path in library_files():
        found.update(long_functions(path))
    assert {k: v for k, v in found.items() if k not in LONG_FUNCTIONS} == {}
    assert LONG_FUNCTIONS - set(found) == set(), "split: remove it from LONG_FUNCTIONS"


def test_no_module_over_400_lines():
    found = {
        path.relative_to(REPO_ROOT).as_posix(): lines
        for path in library_files()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert {k: v for k, v in found.items() if k not in LONG_MODULES} == {}
    assert LONG_MODULES - set(found) == set(), "split: remove it from LONG_MODULES"


def test_the_check_finds_a_long_function(tmp_path: Path):
    """The walk sees methods and nested functions, not only top-level ones."""
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "shape.py"
    source.write_text(f"class A:\n    def long(self):\n{body}\n        return 0\n", encoding="utf-8")
    assert long_functions(source, tmp_path) == {"shape.py:long": MAX_FUNCTION_LINES + 2}
