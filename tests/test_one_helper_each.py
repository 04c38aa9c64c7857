"""One helper for each piece of infrastructure (issue 24), checked over the source of fashion_rag/ so that a
second copy fails here rather than in a reader's head: the atomic write, the file fingerprint and hash, the
user-error list, the device choice, the RGB conversion, the frame size, the scheduler builder, and the
checkpoint file names (weights/sources.json, read by fashion_rag/weights/registry.py)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from fashion_rag.config import REPO_ROOT

PACKAGE = REPO_ROOT / "fashion_rag"

# name -> the one module that defines it (a function or a module-level constant)
HOMES = {
    "to_rgb": "fashion_rag/images.py",
    "FRAME_WIDTH": "fashion_rag/images.py",
    "FRAME_HEIGHT": "fashion_rag/images.py",
    "pick_device": "fashion_rag/devices.py",
    "default_dtype": "fashion_rag/devices.py",
    "atomic_write": "fashion_rag/files.py",
    "atomic_path": "fashion_rag/files.py",
    "staged_folder": "fashion_rag/files.py",
    "swap_into_place": "fashion_rag/files.py",
    "fingerprint": "fashion_rag/files.py",
    "sha256_file": "fashion_rag/files.py",
    "USER_ERRORS": "fashion_rag/errors.py",
    "user_message": "fashion_rag/errors.py",
    "make_scheduler": "fashion_rag/generation/loading.py",
    "UNET_CHECKPOINT": "fashion_rag/weights/registry.py",
    "ADAPTER_CHECKPOINT": "fashion_rag/weights/registry.py",
}
# Renames that are not writes: a download that failed its hash is moved aside (never loaded).
RENAMES_ELSEWHERE = {"fashion_rag/weights/download.py"}


def modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(REPO_ROOT).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def definitions(tree: ast.Module) -> set[str]:
    """Names a module defines: functions and classes anywhere, and module-level assignments."""
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            names |= {t.id for t in ast.walk(target) if isinstance(t, ast.Name)}
    return names


def string_constants(tree: ast.Module) -> list[ast.Constant]:
    """Every str constant that is not a docstring (docstrings may name files; code may not)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_each_helper_is_defined_once_in_its_home():
    found: dict[str, list[str]] = {name: [] for name in HOMES}
    for file, tree in modules().items():
        for name in definitions(tree) & set(HOMES):
            found[name].append(file)
    assert found == {name: [home] for name, home in HOMES.items()}


def test_files_are_renamed_into_place_only_by_the_file_helpers():
    """os.replace / os.rename and the stat's mtime appear in files.py alone: every atomic write goes through
    atomic_write, atomic_path or staged_folder, and every "unchanged file" check through fingerprint."""
    renames, mtimes, digests = set(), set(), set()
    for file, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "os" and node.attr in ("replace", "rename"):
                    renames.add(file)
                if node.value.id == "hashlib" and node.attr == "file_digest":
                    digests.add(file)
            if isinstance(node, ast.Attribute) and node.attr == "st_mtime_ns":
                mtimes.add(file)
    assert renames - RENAMES_ELSEWHERE == {"fashion_rag/files.py"}
    assert mtimes == digests == {"fashion_rag/files.py"}


def test_schedulers_are_built_in_one_place():
    builders = set()
    for file, tree in modules().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "from_config"
                and isinstance(node.value, ast.Name)
                and node.value.id.endswith("Scheduler")
            ):
                builders.add(file)
    assert builders == {"fashion_rag/generation/loading.py"}


def test_checkpoint_file_names_are_written_only_in_sources_json():
    facts = json.loads((REPO_ROOT / "weights" / "sources.json").read_text(encoding="utf-8"))
    checkpoints = {
        name.rsplit("/", 1)[-1]
        for part in facts["parts"].values()
        for choices in part["files_read"].values()
        for name in choices
        if name.endswith((".pth", ".safetensors", ".bin"))
    }
    assert "unet_120000.pth" in checkpoints and "open_clip_pytorch_model.bin" in checkpoints
    literals = [
        f"{file}:{node.lineno}"
        for file, tree in modules().items()
        for node in string_constants(tree)
        if any(name in node.value for name in checkpoints)
    ]
    assert literals == []


def test_the_frame_size_is_not_written_as_numbers():
    """(384, 512) or (512, 384) as a literal pair anywhere but images.py would be a second frame size."""
    pairs = []
    for file, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple) and len(node.elts) == 2:
                values = [e.value for e in node.elts if isinstance(e, ast.Constant) and type(e.value) is int]
                if sorted(values) == [384, 512] and file != "fashion_rag/images.py":
                    pairs.append(f"{file}:{node.lineno}")
    assert pairs == []


def test_the_checks_see_a_copy(tmp_path: Path):
    """The walks find a second definition, an os.replace and a checkpoint literal in a planted module."""
    tree = ast.parse(
        "import os\nFRAME_WIDTH = 384\ndef to_rgb(image):\n    return image\n"
        "def save(a, b):\n    os.replace(a, b)\n    return 'fashion-rag/unet_120000.pth'\n"
    )
    assert {"FRAME_WIDTH", "to_rgb", "save"} <= definitions(tree)
    assert [n.value for n in string_constants(tree)] == ["fashion-rag/unet_120000.pth"]
    assert any(isinstance(n, ast.Attribute) and n.attr == "replace" for n in ast.walk(tree))
