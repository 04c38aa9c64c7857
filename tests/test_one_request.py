"""One shape for an edit (issue 22, item 1): every edit is one EditRequest, and its recipe is that request.

Two guards against a second shape creeping back: no settings object besides EditRequest (the old
`GenerationSettings` that `Editor.edit` took beside loose keywords is gone, and no function of the edit path
takes `options`), and the recipe of a page, an API and a CLI edit is, key for key, the request the editor
received (`request.to_dict(pixels=False)` with the seed used) plus what the edit adds.
"""

from __future__ import annotations

import ast
import inspect
import json
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import pytest

from fashion_rag.config import REPO_ROOT
from fashion_rag.editor import Editor
from fashion_rag.request import EditRequest

from .conftest import ASTRONAUT, as_upload

# What an edit adds to its request in the recipe (fashion_rag/results.py, edit_recipe).
EDIT_ADDS = {"prompt", "mask_source", "mask", "transform", "models", "model_sources", "catalog"}
# The recipe's keys as main wrote them before the request took over (tests/fixtures/recipe_main_0961f2f.json).
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "recipe_main_0961f2f.json"


def python_files() -> list[Path]:
    roots = [REPO_ROOT / "fashion_rag", REPO_ROOT / "benchmarks", REPO_ROOT / "tools", REPO_ROOT / "tests"]
    files = [path for root in roots for path in root.rglob("*.py")]
    return [*files, REPO_ROOT / "app.py"]


def test_no_module_names_a_second_settings_type():
    """The old settings object is gone from the code (this file names it only as text)."""
    this = Path(__file__).resolve()
    naming = [
        str(path.relative_to(REPO_ROOT))
        for path in python_files()
        if path.resolve() != this
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Name) and node.id == "GenerationSettings")
        or (isinstance(node, ast.alias) and node.name == "GenerationSettings")
        or (isinstance(node, ast.ClassDef) and node.name == "GenerationSettings")
    ]
    assert naming == []


def test_no_other_dataclass_holds_the_sampling_settings():
    """A class with steps, guidance and scheduler fields would be a second shape of the request."""
    import importlib
    import pkgutil

    import fashion_rag

    holders = []
    for module_info in pkgutil.walk_packages(fashion_rag.__path__, "fashion_rag."):
        if module_info.name.startswith(("fashion_rag.serve", "fashion_rag.__main__")):
            continue  # serve imports ray (its classes hold no settings: checked by signature below)
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if is_dataclass(value) and value is not EditRequest and value.__module__ == module.__name__:
                names = {field.name for field in fields(value)}
                if {"steps", "guidance", "scheduler"} <= names:
                    holders.append(f"{value.__module__}.{value.__name__}")
    assert holders == []


def signature_of(path: str, name: str) -> list[str]:
    """Parameter names of the function or method `name` (Class.method) in a repo file, read with ast."""
    tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
    owner, _, function = name.rpartition(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == owner or (not owner and node is tree):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == function:
                    arguments = item.args
                    return [a.arg for a in [*arguments.args, *arguments.kwonlyargs]] + (
                        [f"**{arguments.kwarg.arg}"] if arguments.kwarg else []
                    )
    raise AssertionError(f"{name} not found in {path}")


@pytest.mark.parametrize(
    ("path", "name", "parameters"),
    [
        ("fashion_rag/editor.py", "Editor.edit", ["self", "request", "progress"]),
        ("fashion_rag/editor.py", "Editor.run", ["self", "request", "progress"]),
        ("fashion_rag/editor.py", "Editor.recipe", ["self", "request"]),
        ("fashion_rag/editor.py", "Editor._check_edit", ["self", "request"]),
        ("fashion_rag/serve/pool.py", "PooledEditor.edit", ["self", "request", "progress"]),
        ("fashion_rag/serve/pool.py", "PooledEditor.run", ["self", "request", "progress"]),
        ("fashion_rag/results.py", "compose_images", ["person", "frames", "request"]),
        ("fashion_rag/results.py", "edit_recipe", ["settings", "sources", "request"]),
        ("fashion_rag/alternatives.py", "edit_alternatives", ["editor", "request", "alternatives", "progress"]),
        ("fashion_rag/outfit.py", "dress_outfit", ["editor", "photo", "parts", "progress", "**fields"]),
    ],
)
def test_the_edit_path_takes_one_request(path, name, parameters):
    assert signature_of(path, name) == parameters


def test_edit_takes_a_prepared_person_and_run_takes_a_photo(tiny_editor):
    """The two entry points of one shape: a request with a photo is `run`'s (prepare, then edit), and `edit`
    says so instead of preparing behind the caller's back."""
    from fashion_rag.errors import InputError
    from fashion_rag.person.photo import load_photo

    request = EditRequest("upper_body", photo=load_photo(ASTRONAUT), garment_ids=("top-001",), seed=3, steps=1)
    with pytest.raises(InputError, match=r"Editor.edit needs a prepared person \(EditRequest.of\(person, ...\)\): use"):
        tiny_editor.edit(request)
    person = tiny_editor.prepare(request.photo, "upper_body")
    made = tiny_editor.edit(EditRequest.of(person, garment_ids=("top-001",), seed=3, steps=1))
    assert (tiny_editor.run(request).images[0].tobytes(), made.seed) == (made.images[0].tobytes(), 3)


def test_no_function_takes_options_beside_a_request():
    """`options` was the old settings object's parameter name along the edit path."""
    taking = [
        f"{path.relative_to(REPO_ROOT)}:{node.name}"
        for path in (REPO_ROOT / "fashion_rag").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and "options" in [a.arg for a in [*node.args.args, *node.args.kwonlyargs]]
    ]
    assert taking == []


@pytest.fixture
def edits(monkeypatch):
    """Every (request, result) that reaches Editor.edit while the test runs."""
    seen: list[tuple[EditRequest, object]] = []
    real = Editor.edit

    def spy(self, request, progress=None):
        result = real(self, request, progress)
        seen.append((request, result))
        return result

    monkeypatch.setattr(Editor, "edit", spy)
    return seen


def assert_recipe_is_the_request(recipe: dict, request: EditRequest, seed: int) -> None:
    part = replace(request, seed=seed).to_dict(pixels=False)
    assert {key: recipe[key] for key in part} == part
    assert set(recipe) - {"notes"} == set(part) | EDIT_ADDS == set(json.loads(FIXTURE.read_text()))


def test_a_page_edit_records_its_request(tiny_editor, edits):
    from fashion_rag.studio import handlers

    person = tiny_editor.prepare(ASTRONAUT, "upper_body", mask_variant="precise")
    checked = handlers.controls(-1, 1, 6.0, "dpm++", 1, False)  # a random seed: the recipe holds the one used
    request = handlers.edit_request(person, ["top-001"], [], "striped", checked)
    entry, _ = handlers.generate(tiny_editor, request, [], "onerequest")
    ((received, result),) = edits
    assert received.mask_variant == "precise" and received.seed is None and received.steps == 1
    recipe = json.loads(Path(entry.recipe).read_text())
    assert_recipe_is_the_request(recipe, received, result.seed)
    assert recipe == json.loads(json.dumps(result.recipe))  # the file is the result's recipe


def test_an_api_edit_records_its_request(tiny_editor, edits):
    from fashion_rag.studio import api

    upload = {"path": as_upload(ASTRONAUT), "meta": {"_type": "gradio.FileData"}}
    _, seed, recipe_file = api.edit(
        tiny_editor, upload, "upper_body", "top-002", None, None, "a shirt", 9, 1, 5.0, "ddim", 2, True, "onerequest"
    )
    ((received, result),) = edits
    assert (received.garment_ids, received.description, received.num_images, seed) == (("top-002",), "a shirt", 2, 9)
    recipe = json.loads(Path(recipe_file["path"]).read_text())
    assert_recipe_is_the_request(recipe, received, 9)


def test_a_cli_edit_records_its_request(tiny_bundle, tiny_settings, tmp_path, edits, capsys):
    from fashion_rag.cli import main as cli_main

    out = tmp_path / "cli.png"
    arguments = ["edit", "--person", str(ASTRONAUT), "--category", "upper_body", "--garment-id", "top-003"]
    arguments += ["--seed", "4", "--steps", "1", "--guidance", "3.5", "--models", str(tiny_bundle)]
    arguments += ["--index", str(tiny_settings.resolved_index_dir), "--device", "cpu", "--out", str(out), "--json"]
    assert cli_main(arguments) == 0
    capsys.readouterr()
    ((received, _),) = edits
    assert (received.garment_ids, received.seed, received.guidance) == (("top-003",), 4, 3.5)
    assert_recipe_is_the_request(json.loads(out.with_suffix(".recipe.json").read_text()), received, 4)
