"""The library's parts import each other in one direction (issue 24): no two parts of fashion_rag/ import
each other, directly or round a longer loop. A part is a top-level package or module (`person`,
`generation`, `catalog`, `editor`, ...). Imports inside functions count too: they are still a dependency.

`person` and `generation` used to import each other (`to_rgb` lived in `person.photo`, `pick_device` in
`generation.loading`); both now live in neutral modules (fashion_rag/images.py, fashion_rag/devices.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

from fashion_rag.config import REPO_ROOT

PACKAGE = REPO_ROOT / "fashion_rag"

# Loops not untangled yet; each must still be a loop, so that untangling one removes it from here.
# (editor <-> request is gone: EditResult moved to fashion_rag/results.py, which request imports instead.)
KNOWN_LOOPS: set[tuple[str, ...]] = set()


def part_of(module: str) -> str | None:
    """'fashion_rag.person.photo' -> 'person'; None outside the library."""
    parts = module.split(".")
    return parts[1] if parts[0] == "fashion_rag" and len(parts) > 1 else None


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """part -> the other parts it imports (module level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        source = part_of(".".join(relative.parts))
        if source is None or source == "__main__":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
                targets += [f"{node.module}.{alias.name}" for alias in node.names]  # `from fashion_rag import x`
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for part in {part_of(target) for target in targets} - {None, source}:
                if (package / part).is_dir() or (package / f"{part}.py").is_file():  # a name, not a module: skip
                    graph.setdefault(source, set()).add(part)
    return graph


def loops(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Every pair of parts that reach each other, as a sorted tuple (a loop of any length gives its pairs)."""
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    return {tuple(sorted((a, b))) for a in reach for b in reach[a] if a != b and a in reach.get(b, ())}


def test_person_and_generation_do_not_import_each_other():
    graph = import_graph()
    assert "generation" not in graph.get("person", set())
    assert "person" not in graph.get("generation", set())
    # The neutral modules depend on no other part of the library.
    assert graph.get("images", set()) == set() and graph.get("devices", set()) == set()


def test_no_two_parts_of_the_library_import_each_other():
    found = loops(import_graph())
    assert found - KNOWN_LOOPS == set()
    assert KNOWN_LOOPS - found == set(), "untangled: remove it from KNOWN_LOOPS"


def test_the_check_finds_a_loop_inside_a_function(tmp_path: Path):
    """A loop closed by an import inside a function counts, and so does one through a third part."""
    package = tmp_path / "fashion_rag"
    for name, body in {
        "a.py": "from fashion_rag.b import x\n",
        "b.py": "def f():\n    from fashion_rag.c import y\n",
        "c.py": "import fashion_rag.a\n",
        "d.py": "from fashion_rag.a import z\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(body, encoding="utf-8")
    graph = import_graph(package)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert loops(graph) == {("a", "b"), ("a", "c"), ("b", "c")}
