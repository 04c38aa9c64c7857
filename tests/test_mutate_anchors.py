"""`make mutate` (tools/mutate.py) plants each deviation by replacing exact source text. A text that moved
or changed would make that mutation "NOT APPLIED" only when the six-minute run comes; this checks every
anchor in the fast suite, so a refactor that moves one updates tools/mutate.py in the same change."""

from __future__ import annotations

import importlib.util
import sys

from fashion_rag.config import REPO_ROOT


def load_mutate():
    spec = importlib.util.spec_from_file_location("mutate_tool", REPO_ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutation_text_occurs_exactly_once_and_changes_it():
    mutate = load_mutate()
    assert len(mutate.MUTATIONS) >= 69  # the recipe's rules and product rules (docs/recipe.md)
    wrong = {}
    for mutation in mutate.MUTATIONS:
        for file, old, new in mutation.edits:
            count = (REPO_ROOT / file).read_text(encoding="utf-8").count(old)
            if count != 1 or old == new:
                wrong[mutation.name] = (file, count)
    assert wrong == {}


def test_every_named_test_exists():
    mutate = load_mutate()
    for mutation in mutate.MUTATIONS:
        for test in mutation.tests:
            file, _, name = test.partition("::")
            source = (REPO_ROOT / file).read_text(encoding="utf-8")
            assert not name or f"def {name}(" in source, f"{mutation.name}: {test} not found"
