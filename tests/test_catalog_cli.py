"""`index build`, `search` and `evaluate` on the command line, with the tiny bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
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
        "search",
        "navy slip dress with white polka dots",
        "--category",
        "dresses",
        "-k",
        "4",
        "--index",
        str(built_index),
        "--models",
        str(tiny_bundle),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    payload = json.loads(result.stdout)
    # The tiny bundle's encoder has random weights: hybrid search ranks caption matches first, and says so.
    assert payload["mode"] == "hybrid" and "random weights" in payload["mode_reason"]
    assert payload["warnings"] == [payload["mode_reason"]]
    assert payload["chunks"] == ["navy slip dress", "white polka dots"]
    assert len(payload["hits"]) == 4 and {hit["category"] for hit in payload["hits"]} == {"dresses"}
    assert set(payload["hits"][0]) == {
        "id",
        "category",
        "caption",
        "score",
        "chunk",
        "dense_rank",
        "lexical_rank",
        "similarity",
    }


def test_index_rebuild_and_evaluate(built_index: Path, tiny_bundle: Path, capsys):
    # In process: the subprocess tests above already cover the entry point; this saves a Python start.
    assert main(["index", "build", str(EXAMPLE), "--out", str(built_index), "--models", str(tiny_bundle)]) == 0
    assert "is up to date" in capsys.readouterr().out  # nothing embedded, no file written

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
        (["search", "\U0001f457 !!", "--category", "dresses"], "has no letters, so it names no garment"),
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
    code = main(
        [
            "search",
            "plain purple t-shirt",
            "--category",
            "upper_body",
            "-k",
            "2",
            "--models",
            str(tmp_path),
            "--catalog",
            str(EXAMPLE),
            "--index",
            str(tmp_path / "none"),
            "--json",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "lexical" and "retrieval-encoder" in payload["mode_reason"]
    assert payload["hits"][0]["id"] == "top-001" and payload["hits"][0]["dense_rank"] is None

    code = main(
        [
            "search",
            "plain purple t-shirt",
            "--category",
            "upper_body",
            "--models",
            str(tmp_path),
            "--catalog",
            str(EXAMPLE),
            "--index",
            str(tmp_path / "none"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0 and "lexical search only" in captured.err
    assert captured.out.splitlines()[0] == "lexical search in upper_body; chunks: plain purple t-shirt"
    assert "top-001" in captured.out.splitlines()[1]


def test_search_kurta_returns_results(built_index: Path, tiny_bundle: Path):
    # Issue 13: a garment name outside the chunker's vocabulary is searched, not refused.
    for text in ("kurta",):  # one Python start; the others in process below
        result = run_cli(
            "search",
            text,
            "--category",
            "dresses",
            "-k",
            "3",
            "--index",
            str(built_index),
            "--models",
            str(tiny_bundle),
            "--json",
        )
        assert result.returncode == 0, result.stderr
        hits = json.loads(result.stdout)["hits"]
        assert len(hits) == 3 and {hit["category"] for hit in hits} == {"dresses"}


def test_other_garment_names_are_searched_in_process(built_index: Path, tiny_bundle: Path, capsys):
    for text in ("an embroidered sari", "jade qipao", "lehenga choli"):
        code = main(
            [
                "search",
                text,
                "--category",
                "dresses",
                "-k",
                "3",
                "--index",
                str(built_index),
                "--models",
                str(tiny_bundle),
                "--json",
            ]
        )
        assert code == 0 and len(json.loads(capsys.readouterr().out)["hits"]) == 3


def test_evaluate_paper_protocol_is_dense_on_the_given_chunks(built_index: Path, tiny_bundle: Path, tmp_path, capsys):

    from fashion_rag.catalog.encoder import RetrievalEncoder
    from fashion_rag.catalog.index import load_index
    from fashion_rag.weights import ModelSources

    rows = [json.loads(line) for line in (EXAMPLE / "metadata.jsonl").read_text().splitlines() if line.strip()]
    queries = []
    for row in rows[::9]:
        words = row["caption"].split()
        chunks = [" ".join(words[:3]), " ".join(words[3:5]) or words[0], " ".join(words[5:]) or words[-1], "extra"]
        queries.append({"text": row["caption"], "chunks": chunks, "category": row["category"], "relevant": [row["id"]]})
    path = tmp_path / "paper.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in queries))
    code = main(
        [
            "evaluate",
            str(path),
            "--protocol",
            "paper",
            "--index",
            str(built_index),
            "--models",
            str(tiny_bundle),
            "--ks",
            "1,3,10",
            "--json",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["protocol"] == "paper"
    assert [s["mode"] for s in payload["scores"]] == ["paper, 1 chunk", "paper, 3 chunks"]

    # Independently: the text embedding of the first chunk (or the first three joined with ", ") against
    # every image vector of the category, by numpy; recall@k = share of queries with their item in the top k.
    encoder = RetrievalEncoder.from_sources(ModelSources(str(tiny_bundle)), device="cpu")
    index = load_index(built_index)
    for scores, n in zip(payload["scores"], (1, 3), strict=True):
        ranks = []
        for q in queries:
            rows_in = [r for r, item in enumerate(index.items) if item.category == q["category"]]
            text = ", ".join(q["chunks"][:n])
            similarity = np.asarray(index.vectors[rows_in]) @ encoder.encode_texts([text])[0]
            order = [index.items[rows_in[i]].id for i in np.argsort(-similarity, kind="stable")]
            ranks.append(order.index(q["relevant"][0]) + 1)
        for k in (1, 3, 10):
            assert scores[f"R@{k}"] == pytest.approx(sum(r <= k for r in ranks) / len(ranks)), (n, k)
        assert scores["queries"] == len(queries)
