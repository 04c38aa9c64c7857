"""Every code block of the README runs (issue 14), as written, with the tiny bundle where weights are needed.

- ```python blocks run in a fresh interpreter (the library example, two 50-step edits, in `make test-slow`), from a folder where `examples/` is the repo's, with
  FASHION_RAG_MODELS naming the tiny bundle (the library example reads it) and the index and outputs in
  a temp folder. The API example's one literal, the studio's URL, becomes the test studio's URL.
- The CLI synopsis block: every command exists and every flag it lists is one the command accepts.
- The `make` block: each target exists and expands (`make -n`); running `make test` inside the test
  suite would run the suite again.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the test studio's edits: one thread is faster
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
STUDIO_URL = "http://127.0.0.1:7860/"


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCKS if lang == language]


def test_the_readme_has_the_blocks_this_test_runs():
    assert [lang for lang, _ in BLOCKS] == [
        "bash",
        "bash",
        "bash",
        "python",
        "python",
    ]  # a new block needs a runner here


def run_python(code: str, tmp_path, tiny_settings, **extra_env) -> subprocess.CompletedProcess:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FASHION_RAG_MODELS": str(tiny_settings.runtime.models),
        "FASHION_RAG_DEVICE": "cpu",
        "FASHION_RAG_INDEX": str(tiny_settings.resolved_index_dir),
        "FASHION_RAG_OUTPUT_DIR": str(tmp_path / "outputs"),
        "OMP_NUM_THREADS": "1",
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow  # two default 50-step edits in a fresh interpreter: ~2 min on the shared 2-core box
def test_python_library_example(tmp_path, tiny_editor):
    code = next(code for code in blocks("python") if "Editor.from_settings" in code)
    done = run_python(code, tmp_path, tiny_editor.settings)
    assert done.returncode == 0, done.stderr[-3000:]
    from PIL import Image

    from .conftest import ASTRONAUT

    assert Image.open(tmp_path / "edited.png").size == Image.open(ASTRONAUT).size


def test_gradio_client_example(tmp_path, tiny_editor, studio_url):
    code = next(code for code in blocks("python") if "gradio_client" in code)
    assert code.count(STUDIO_URL) == 1
    code += "\nassert len(gallery) == 1 and 0 <= seed < 2**32 and recipe.endswith('.recipe.json')\n"
    done = run_python(code.replace(STUDIO_URL, studio_url), tmp_path, tiny_editor.settings)
    assert done.returncode == 0, done.stderr[-3000:]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    return dict(actions[0].choices) if actions else {}


def test_cli_synopsis_lists_only_commands_and_flags_that_exist():
    from app import build_parser as build_app_parser
    from fashion_rag.cli import build_parser

    synopsis = next(code for code in blocks("bash") if "python -m fashion_rag" in code)
    commands = re.findall(r"^python -m fashion_rag (\w[\w-]*)(.*?)(?=^python|\Z)", synopsis, flags=re.S | re.M)
    assert [name for name, _ in commands] == ["weights", "index", "search", "evaluate", "prepare", "edit", "batch"]
    parsers = subcommands(build_parser())
    for name, text in commands:
        parser = parsers[name]
        verbs = subcommands(parser)  # `weights status | download …`, `index build …`
        if verbs:
            named = re.findall(r"(?:^|\| ?)\s*([a-z][a-z-]+)", text.strip())
            assert named and set(named) <= set(verbs), (name, named)
            parser = verbs[named[0]] if len(named) == 1 else parser
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-k)\b", text))
        accepted = set(parser._option_string_actions)  # noqa: SLF001
        assert flags <= accepted, (name, sorted(flags - accepted))
    app_line = next(line for line in synopsis.splitlines() if line.startswith("python app.py"))
    app_flags = set(build_app_parser()._option_string_actions)  # noqa: SLF001
    assert set(re.findall(r"--[a-z-]+", app_line)) <= app_flags


def test_every_app_command_line_of_the_readme_parses():
    """`python app.py …` lines (serve mode's one command among them) name only flags app.py accepts, with valid
    values (`--replicas 2`)."""
    from app import parse_args

    lines = [line.split("#")[0].split() for code in blocks("bash") for line in code.splitlines()]
    commands = [words[2:] for words in lines if words[:2] == ["python", "app.py"] and "[" not in " ".join(words)]
    assert any("--serve" in words for words in commands)
    for words in commands:
        assert parse_args(words).port > 0, words


@pytest.mark.parametrize("target", [t for code in blocks("bash") for t in re.findall(r"^make (\S+)", code, flags=re.M)])
def test_make_targets_of_the_readme_exist(target):
    done = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
