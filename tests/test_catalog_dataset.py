"""`index build --dataset`: a catalog kept as a Hugging Face dataset (issue 13, item 7).

The parquet files are written here, the way a retailer's export or `datasets` would write them; the Hub
case runs the real command in a subprocess against the local fake Hub (tests/fake_hub.py), so the real
`huggingface_hub` client and `datasets` reader are what is tested.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fashion_rag.catalog.catalog import load_catalog
from fashion_rag.catalog.dataset import import_dataset, open_dataset
from fashion_rag.cli import main
from fashion_rag.config import REPO_ROOT
from fashion_rag.errors import InputError

from .fake_hub import FakeHub, FakeRepo

EXAMPLE = REPO_ROOT / "examples" / "catalog"
GARMENTS = [  # (example file, caption, category)
    ("upper_body/top-001.png", "plain purple t-shirt", "upper_body"),
    ("upper_body/top-002.png", "pink and navy striped button-down shirt", "upper_body"),
    ("lower_body/bottom-001.png", "dark blue denim jeans", "lower_body"),
    ("dresses/dress-001.png", "embroidered green kurta", "dresses"),
    ("dresses/dress-002.png", "navy slip dress with white polka dots", "dresses"),
]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def jpeg_of(file: str) -> bytes:
    out = io.BytesIO()
    Image.open(EXAMPLE / file).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def retailer_parquet(path: Path, rows: list[dict]) -> Path:
    """A parquet file as pyarrow writes it, with the Hub's image convention (a struct of bytes and path)."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "image": pa.array([{"bytes": r["bytes"], "path": None} for r in rows], type=image_type),
            "caption": [r["caption"] for r in rows],
            "category": [r["category"] for r in rows],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def garment_rows() -> list[dict]:
    rows = [
        {"id": Path(f).stem, "bytes": (EXAMPLE / f).read_bytes(), "caption": c, "category": cat}
        for f, c, cat in GARMENTS
    ]
    rows.append(
        {
            "id": "top-jpeg",
            "bytes": jpeg_of(GARMENTS[0][0]),
            "caption": "the same tee as a jpeg",
            "category": "upper_body",
        }
    )
    return rows


def bad_rows() -> list[dict]:
    good = (EXAMPLE / GARMENTS[0][0]).read_bytes()
    return [
        {"id": "hat-1", "bytes": good, "caption": "a hat", "category": "hats"},
        {"id": "broken", "bytes": good[:40], "caption": "cut off", "category": "upper_body"},
        {"id": "top-001", "bytes": good, "caption": "same id again", "category": "upper_body"},
        {"id": "a/b", "bytes": good, "caption": "a path for an id", "category": "upper_body"},
    ]


def test_a_parquet_file_becomes_a_catalog_with_the_images_unchanged_and_an_index(tmp_path, tiny_bundle, capsys):
    source = retailer_parquet(tmp_path / "shop.parquet", garment_rows() + bad_rows())
    catalog_dir, index_dir = tmp_path / "catalog", tmp_path / "catalog" / "index"
    code = main(["index", "build", str(catalog_dir), "--dataset", str(source), "--models", str(tiny_bundle), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["dataset"]["rows"] == 10 and payload["dataset"]["written"] == 6
    problems = payload["dataset"]["problems"]
    assert [p.split(":")[0] for p in problems] == ["unknown-category", "corrupt-image", "duplicate-id", "bad-id"]
    assert "category 'hats': use one of upper_body, lower_body, dresses" in problems[0]
    assert payload["count"] == 6 and payload["counts"] == {"upper_body": 3, "lower_body": 1, "dresses": 2}

    # Each image is written with its own bytes, under its category and id, with its caption.
    for file, _, _ in GARMENTS:
        assert (catalog_dir / file).read_bytes() == (EXAMPLE / file).read_bytes()
    assert (catalog_dir / "upper_body" / "top-jpeg.jpg").read_bytes() == jpeg_of(GARMENTS[0][0])
    catalog = load_catalog(catalog_dir)
    assert {i.id: (i.category, i.caption) for i in catalog} == {
        "top-001": ("upper_body", "plain purple t-shirt"),
        "top-002": ("upper_body", "pink and navy striped button-down shirt"),
        "top-jpeg": ("upper_body", "the same tee as a jpeg"),
        "bottom-001": ("lower_body", "dark blue denim jeans"),
        "dress-001": ("dresses", "embroidered green kurta"),
        "dress-002": ("dresses", "navy slip dress with white polka dots"),
    }
    assert catalog.problems == ()

    # The index built from it searches: "kurta" finds the dataset's kurta.
    code = main(
        [
            "search",
            "kurta",
            "--category",
            "dresses",
            "-k",
            "1",
            "--index",
            str(index_dir),
            "--models",
            str(tiny_bundle),
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == "dress-001"


def test_reimporting_an_unchanged_dataset_writes_nothing_and_a_changed_one_only_the_change(tmp_path):
    import datasets

    rows = garment_rows()
    source = retailer_parquet(tmp_path / "shop.parquet", rows)
    catalog_dir = tmp_path / "catalog"
    first = import_dataset(datasets.load_dataset("parquet", data_files=str(source), split="train"), catalog_dir)
    stats = {p: p.stat().st_mtime_ns for p in catalog_dir.rglob("*") if p.is_file()}

    again = import_dataset(open_dataset(str(source)), catalog_dir)
    assert (again.written, again.unchanged, again.removed) == ([], 6, [])
    assert {p: p.stat().st_mtime_ns for p in catalog_dir.rglob("*") if p.is_file()} == stats

    changed = [dict(r) for r in rows if r["id"] != "top-002"]  # one garment left the shop ...
    changed[0]["bytes"] = (EXAMPLE / "upper_body" / "top-003.png").read_bytes()  # ... and one photo was redone
    changed[0]["caption"] = "grey and black checked blazer"
    update = import_dataset(open_dataset(str(retailer_parquet(tmp_path / "v2.parquet", changed))), catalog_dir)
    assert update.written == ["upper_body/top-001.png"] and update.unchanged == 4
    assert update.removed == ["upper_body/top-002.png"] and not (catalog_dir / "upper_body" / "top-002.png").exists()
    assert first.written and (catalog_dir / "upper_body" / "top-001.png").read_bytes() == changed[0]["bytes"]
    assert {i.id: i.caption for i in load_catalog(catalog_dir)}["top-001"] == "grey and black checked blazer"


def test_a_dataset_written_by_datasets_with_class_labels_and_no_ids(tmp_path):
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "title": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["upper_body", "lower_body", "dresses"]),
        }
    )
    pictures = [(EXAMPLE / f).read_bytes() for f, _, _ in GARMENTS]
    data = {
        "image": [{"bytes": b, "path": None} for b in pictures],
        "title": [c for _, c, _ in GARMENTS],
        "label": [["upper_body", "lower_body", "dresses"].index(cat) for _, _, cat in GARMENTS],
    }
    folder = tmp_path / "export"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(data, features=features).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet")
    )
    datasets.Dataset.from_dict({k: v[:1] for k, v in data.items()}, features=features).to_parquet(
        str(folder / "data" / "test-00000-of-00001.parquet")
    )

    with pytest.raises(InputError, match="no column 'category'"):
        import_dataset(open_dataset(str(folder)), tmp_path / "refused")
    from fashion_rag.catalog.dataset import Columns

    report = import_dataset(open_dataset(str(folder), split="train"), tmp_path / "c", columns=Columns(category="label"))
    assert report.rows == 5 and report.problems == []  # the test split is not taken
    catalog = load_catalog(tmp_path / "c")
    import hashlib

    # Without an id column, an image's id is its content hash: stable when rows are reordered or others change.
    assert {i.id for i in catalog} == {hashlib.sha256(b).hexdigest()[:16] for b in pictures}
    assert sorted(i.caption for i in catalog) == sorted(c for _, c, _ in GARMENTS)
    with pytest.raises(InputError, match='Unknown split "validation"'):
        open_dataset(str(folder), split="validation")


def test_a_hand_made_catalog_is_never_overwritten(tmp_path):
    import shutil

    shutil.copytree(EXAMPLE, tmp_path / "mine")
    before = sorted(p.name for p in (tmp_path / "mine").rglob("*.png"))
    source = retailer_parquet(tmp_path / "shop.parquet", garment_rows())
    with pytest.raises(InputError, match="already holds a catalog that was not imported from a dataset"):
        import_dataset(open_dataset(str(source)), tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").rglob("*.png")) == before
    with pytest.raises(InputError, match="neither a .parquet file, a folder, nor a Hub dataset id"):
        open_dataset("no/such/place")


def run_build_from_hub(hub: FakeHub, tmp_path: Path, tiny_bundle: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FASHION_RAG_"))},
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fashion_rag",
            "index",
            "build",
            str(tmp_path / "catalog"),
            "--models",
            str(tiny_bundle),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )


def test_a_hub_dataset_is_fetched_at_its_commit_and_a_missing_one_is_one_clear_line(tmp_path, tiny_bundle):
    train = retailer_parquet(tmp_path / "p" / "train.parquet", garment_rows()).read_bytes()
    test = retailer_parquet(tmp_path / "p" / "test.parquet", garment_rows()[:1]).read_bytes()
    with FakeHub() as hub:
        hub.repos["shop/garments"] = FakeRepo(
            kind="dataset",
            files={
                "README.md": b"# shop\n",
                "data/train-00000-of-00001.parquet": train,
                "data/test-00000-of-00001.parquet": test,
            },
        )
        result = run_build_from_hub(hub, tmp_path, tiny_bundle, "--dataset", "shop/garments", "--json")
        assert result.returncode == 0, result.stderr
        payload = json.loads(result.stdout)
        assert payload["dataset"]["rows"] == 6 and payload["count"] == 6
        commit = hub.repos["shop/garments"].commit
        fetched = {path for method, repo, path, _ in hub.requests if method == "GET" and path}
        assert fetched == {"data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}  # no README
        assert set(hub.resolved_revisions) == {commit}  # pinned: every file from the commit `main` named

        missing = run_build_from_hub(hub, tmp_path, tiny_bundle, "--dataset", "shop/gone")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "error: the Hub has no dataset shop/gone (removed, renamed or private; a private one needs HF_TOKEN)"
    ]
