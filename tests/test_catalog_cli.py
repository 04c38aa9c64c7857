"""`index build`, `search` and `evaluate` on the command line, with the tiny bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_rag.cli import main
from fashion_rag.config import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "catalog"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASHION_RAG_")}
    env["OMP_NUM_THREADS"] = "1"  # see one_torch_thread: the tiny model is faster on one thread
    return subprocess.run(
        [sys.executable, "-m", "fashion_rag", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def built_index(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "index"
    result = run_cli("index", "build", str(EXAMPLE), "--out", str(out), "--models", str(tiny_bundle), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["count"] == 99 and payload["embedded"] == 99 and payload["previous"] == "none"
    assert payload["counts"] == {"upper_body": 33, "lower_body": 33, "dresses": 33}
    assert payload["kinds"] == {"upper_body": "flat", "lower_body": "flat", "dresses": "flat"}
    assert payload["encoder"]["name"] == "tiny-bundle/retrieval-encoder" and payload["problems"] == []
    return out


def test_search_json_is_one_object(built_index: Path, tiny_bundle: Path):
    result = run_cli(
        "search", "navy slip dress with white polka dots", "--category", "dresses", "-k", "4",
        "--index", str(built_index), "--models", str(tiny_bundle), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    payload = json.loads(result.stdout)
    assert payload["mode"] == "hybrid" and payload["mode_reason"] == "" and payload["warnings"] == []
    assert payload["chunks"] == ["navy slip dress", "white polka dots"]
    assert len(payload["hits"]) == 4 and {hit["category"] for hit in payload["hits"]} == {"dresses"}
    assert set(payload["hits"][0]) == {
        "id", "category", "caption", "score", "chunk", "dense_rank", "lexical_rank", "similarity",
    }  # fmt: skip


def test_index_rebuild_and_evaluate(built_index: Path, tiny_bundle: Path, capsys):
    # In process: the subprocess tests above already cover the entry point; this saves a Python start.
    assert main(["index", "build", str(EXAMPLE), "--out", str(built_index), "--models", str(tiny_bundle)]) == 0
    assert "embedded 0, reused 99; added 0, changed 0, removed 0" in capsys.readouterr().out

    queries = REPO_ROOT / "examples" / "queries.jsonl"
    code = main(["evaluate", str(queries), "--index", str(built_index), "--models", str(tiny_bundle), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert [s["mode"] for s in payload["scores"]] == ["hybrid", "dense", "lexical"]
    assert all(s["queries"] == 30 and set(s) >= {"R@1", "R@5", "R@10", "mrr"} for s in payload["scores"])

    code = main(["evaluate", str(queries), "--index", str(built_index), "--models", str(tiny_bundle), "--ks", "1,3"])
    table = capsys.readouterr().out.splitlines()
    assert code == 0 and table[0] == "| mode | queries | R@1 | R@3 | MRR |" and len(table) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "   ", "--category", "dresses"], "error: the description is empty: describe the garment"),
        (["search", "red dress", "--category", "hats"], "error: unknown category 'hats'"),
        (["search", "red dress", "--category", "dresses", "-k", "0"], "error: k=0 is out of range: use 1 to 33"),
        (["search", "hello there", "--category", "dresses"], "names no garment"),
        (["index", "build", "/nonexistent/catalog"], "error: catalog folder '/nonexistent/catalog' does not exist"),
        (["evaluate", "/nonexistent/q.jsonl"], "error: queries file '/nonexistent/q.jsonl' does not exist"),
    ],
)
def test_cli_errors_in_process(args: list[str], message: str, tiny_bundle: Path, capsys, monkeypatch):
    monkeypatch.delenv("FASHION_RAG_INDEX", raising=False)
    assert main([*args, "--models", str(tiny_bundle), "--json"]) == 2  # errors never go to stdout
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith(message) or message in captured.err


def test_search_without_weights_is_lexical(tmp_path: Path, capsys):
    (tmp_path / "bundle.json").write_text('{"name": "empty"}')
    code = main(["search", "plain purple t-shirt", "--category", "upper_body", "-k", "2", "--models", str(tmp_path),
                 "--catalog", str(EXAMPLE), "--index", str(tmp_path / "none"), "--json"])  # fmt: skip
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "lexical" and "retrieval-encoder" in payload["mode_reason"]
    assert payload["hits"][0]["id"] == "top-001" and payload["hits"][0]["dense_rank"] is None

    code = main(["search", "plain purple t-shirt", "--category", "upper_body", "--models", str(tmp_path),
                 "--catalog", str(EXAMPLE), "--index", str(tmp_path / "none")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and "lexical search only" in captured.err
    assert captured.out.splitlines()[0] == "lexical search in upper_body; chunks: plain purple t-shirt"
    assert "top-001" in captured.out.splitlines()[1]
