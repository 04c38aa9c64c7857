"""Issue 8, promise 3: faults, each recovered from with a clear message while the rest keeps serving.

- a checkpoint whose sha256 does not match its lock entry, at load (the download faults, a transfer cut off
  included, run the real huggingface_hub client against a local fake Hub: tests/test_download.py);
- an index folder that is corrupt, half-written or built by another encoder;
- out-of-memory during generation (the pipeline call raises torch.OutOfMemoryError once);
- a catalog image deleted after indexing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import fashion_rag.editor as editor_module
import fashion_rag.weights as weights_module
from fashion_rag.catalog.index import MANIFEST_NAME, VECTORS_NAME, load_index
from fashion_rag.cli import main as cli_main
from fashion_rag.editor import Editor
from fashion_rag.errors import CatalogIndexError, GpuOutOfMemoryError, InputError, WeightsIntegrityError
from fashion_rag.files import sha256_file
from fashion_rag.generation.pipeline import FashionRAGPipeline
from fashion_rag.request import EditRequest
from fashion_rag.studio import status_markdown
from fashion_rag.weights import GENERATION_PARTS, REGISTRY

from .conftest import ASTRONAUT, EXAMPLE_CATALOG

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the tiny models: one intra-op thread is faster

FAST = {"steps": 1}  # EditRequest fields of a quick edit
OOM_ADVICE = r"the GPU ran out of memory for this edit: ask for fewer images, or start with --low-vram"


def editor_sharing_models(tiny_editor, **changes) -> Editor:
    """A new Editor over changed settings that borrows the session editor's loaded person and generation
    models: only the part under test (the catalog search) is built anew."""
    editor = Editor.from_settings(replace(tiny_editor.settings, **changes))
    editor._preparer = tiny_editor.preparer
    editor._pipeline = tiny_editor.pipeline
    editor._cache = tiny_editor.garment_cache
    return editor


@pytest.fixture(scope="module")
def person(tiny_editor):
    return tiny_editor.prepare(ASTRONAUT, "upper_body")


# --------------------------------------------------------------------------------------------------
# A checkpoint changed after it was locked (download faults: tests/test_download.py, against a fake Hub)


PART = "fashion-rag"


def test_app_serves_with_a_tampered_checkpoint_and_generates_once_it_is_restored(
    tiny_editor, tiny_bundle, person, tmp_path, monkeypatch
):
    """Default sources from weights/ (the tiny parts copied there with a lock): the UNet checkpoint is
    changed after it was locked. Start-up still succeeds, the status and each edit say what is wrong,
    photo and search work, and after the file is restored the next edit succeeds without a restart."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # nothing else found by accident
    weights = tmp_path / "weights"
    lock = {}
    for name in GENERATION_PARTS:
        shutil.copytree(tiny_bundle / name, weights / name)
        for file_name in REGISTRY[name].file_names:
            lock[f"{name}/{file_name}"] = {"sha256": sha256_file(weights / name / file_name)}
    weights_module.write_lock(weights, lock)
    checkpoint = weights / PART / "unet_120000.pth"
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(original[:-16] + bytes(16))

    runtime = replace(tiny_editor.settings.runtime, models="default", weights_dir=weights)
    editor = Editor.from_settings(replace(tiny_editor.settings, runtime=runtime))
    editor._preparer = tiny_editor.preparer
    editor.load()  # does not raise: generation is marked unavailable
    assert editor.generation_problem.startswith(f"{PART}/unet_120000.pth: sha256")
    status = status_markdown(editor)
    assert f"**Generate is unavailable:** {PART}/unet_120000.pth: sha256" in status
    assert "Photo, mask and search still work" in status
    with pytest.raises(WeightsIntegrityError, match=rf"{PART}/unet_120000.pth: sha256 .* does not match the lock"):
        editor.edit(EditRequest.of(person, garment_ids=["top-001"], seed=1, **FAST))
    assert editor.prepare(ASTRONAUT, "upper_body").mask.any()
    assert len(editor.search("red dress", "dresses", 3)) == 3  # lexical: no retrieval encoder in weights/

    checkpoint.write_bytes(original)
    result = editor.edit(EditRequest.of(person, garment_ids=["top-001"], seed=1, **FAST))
    assert result.images[0].size == person.original.size and editor.generation_problem is None
    assert "**Generate:** ready" in status_markdown(editor)


# --------------------------------------------------------------------------------------------------
# Index folder corrupt, half-written or built by another encoder


def _garbage_vectors(index: Path) -> None:
    path = index / VECTORS_NAME
    path.write_bytes(bytes(reversed(path.read_bytes())))


def _half_vectors(index: Path) -> None:
    path = index / VECTORS_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _no_vectors(index: Path) -> None:
    (index / VECTORS_NAME).unlink()


def _broken_manifest(index: Path) -> None:
    path = index / MANIFEST_NAME
    path.write_text(path.read_text()[:200])  # cut mid-way: not JSON any more


def _other_encoder(index: Path) -> None:
    path = index / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["encoder"]["identity"] = "laion/CLIP-ViT-L-14-laion2B-s32B-b82K@main weights:0123456789ab"
    path.write_text(json.dumps(manifest))


INDEX_DAMAGE = {
    "corrupt-vectors": (_garbage_vectors, r"does not match its manifest: vectors\.npy was modified or half-written"),
    "half-written-vectors": (_half_vectors, r"does not match its manifest: vectors\.npy was modified or half-written"),
    "missing-vectors": (_no_vectors, r"is incomplete: vectors\.npy is missing"),
    "corrupt-manifest": (_broken_manifest, r"has a corrupt manifest\.json"),
    "other-encoder": (
        _other_encoder,
        r"was built with the retrieval encoder 'laion/CLIP-ViT-L-14.*', but the encoder "
        r"in use is 'tiny-bundle/retrieval-encoder",
    ),
}


@pytest.mark.parametrize("damage", list(INDEX_DAMAGE))
def test_damaged_index_is_refused_clearly_and_search_falls_back_to_captions(
    tiny_editor, tiny_bundle, tmp_path, capsys, damage
):
    damage_fn, message = INDEX_DAMAGE[damage]
    index = tmp_path / "index"
    shutil.copytree(tiny_editor.settings.resolved_index_dir, index)
    damage_fn(index)
    identity = tiny_editor.searcher.encoder.identity
    with pytest.raises(CatalogIndexError, match=message):
        load_index(index, encoder_identity=identity)

    # The command line refuses with one line that says what to do.
    args = [
        "search",
        "red dress",
        "--category",
        "dresses",
        "--models",
        str(tiny_bundle),
        "--catalog",
        str(EXAMPLE_CATALOG),
        "--index",
        str(index),
    ]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "rebuild" in err[0].lower()

    # The editor (and the app on it) keeps serving: captions only, and the status line says why.
    editor = editor_sharing_models(tiny_editor, index_dir=index)
    assert editor.searcher.mode == "lexical"
    assert editor.searcher.mode_reason.startswith(f"lexical search only: index at {index}")
    hits = editor.search("red dress", "dresses", 3)
    assert len(hits) == 3 and all("red" in hit.caption for hit in hits) and hits[0].dense_rank is None
    assert f"search: lexical (lexical search only: index at {index}" in status_markdown(editor)
    # An edit takes a caption-found garment of the person's own category (the editor refuses others).
    shirt = editor.search("striped shirt", "upper_body", 1)[0].id
    assert (
        editor.edit(EditRequest.of(editor.prepare(ASTRONAUT, "upper_body"), garment_ids=[shirt], seed=2, **FAST)).seed
        == 2
    )


def test_half_written_index_folder_without_manifest_does_not_stop_the_app(tiny_editor, tmp_path, capsys):
    index = tmp_path / "index"
    index.mkdir()
    shutil.copy(tiny_editor.settings.resolved_index_dir / VECTORS_NAME, index / VECTORS_NAME)  # no manifest
    editor = editor_sharing_models(tiny_editor, index_dir=index)
    editor.ensure_index()  # what main() runs at start-up: it refuses to overwrite the folder, and says so
    out = capsys.readouterr().out
    assert f"could not build the catalog index: {str(index)!r} is not empty and holds no index" in out
    assert sorted(p.name for p in index.iterdir()) == [VECTORS_NAME]  # left as it was
    assert editor.searcher.mode == "lexical" and f"no index at {index}" in editor.searcher.mode_reason
    assert len(editor.search("blue jeans", "lower_body", 2)) == 2


# --------------------------------------------------------------------------------------------------
# Out of memory during generation


@pytest.fixture
def oom_once(monkeypatch):
    """The next pipeline call raises torch.OutOfMemoryError; records the calls and the memory release."""
    record = {"calls": 0, "released": 0}
    real_call = FashionRAGPipeline.__call__
    real_release = editor_module._release_memory

    def call(self, *args, **kwargs):
        record["calls"] += 1
        if record["calls"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(self, *args, **kwargs)

    def release():
        record["released"] += 1
        real_release()

    monkeypatch.setattr(FashionRAGPipeline, "__call__", call)
    monkeypatch.setattr(editor_module, "_release_memory", release)
    return record


def test_out_of_memory_gives_advice_releases_memory_and_the_next_edit_works(tiny_editor, person, oom_once):
    with pytest.raises(GpuOutOfMemoryError, match=OOM_ADVICE) as info:  # the GPU's limit, not bad input
        tiny_editor.edit(EditRequest.of(person, garment_ids=["top-001"], seed=4, **{**FAST, "num_images": 4}))
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    assert oom_once["released"] == 1 and not tiny_editor._generation_lock.locked()
    result = tiny_editor.edit(EditRequest.of(person, garment_ids=["top-001"], seed=4, **FAST))
    assert oom_once["calls"] == 2 and result.seed == 4 and result.images[0].size == person.original.size


def test_out_of_memory_through_the_app_and_the_next_request_works(studio_url, oom_once):
    client = Client(studio_url, verbose=False)
    arguments = [handle_file(str(ASTRONAUT)), "upper_body", "top-001", None, None, "", 6, 1, 7.5, "ddim", 4, True]
    with pytest.raises(AppError, match=OOM_ADVICE):
        client.predict(*arguments, api_name="/edit")
    assert oom_once["released"] == 1
    arguments[10] = 1
    gallery, seed, _ = client.predict(*arguments, api_name="/edit")
    assert seed == 6 and len(gallery) == 1 and oom_once["calls"] == 2


# --------------------------------------------------------------------------------------------------
# A catalog image deleted after indexing


@pytest.fixture
def own_catalog(tiny_editor, tmp_path):
    """A copy of the example catalog and of its tiny index (the index records files relative to the catalog)."""
    catalog = tmp_path / "catalog"
    shutil.copytree(EXAMPLE_CATALOG, catalog, ignore=shutil.ignore_patterns("index"))
    index = tmp_path / "index"
    shutil.copytree(tiny_editor.settings.resolved_index_dir, index)
    return catalog, index


def test_catalog_image_deleted_while_serving_is_named_and_the_rest_works(tiny_editor, person, own_catalog):
    catalog, index = own_catalog
    editor = editor_sharing_models(tiny_editor, catalog_dir=catalog, index_dir=index)
    assert editor.searcher.mode == "hybrid"
    (catalog / "upper_body" / "top-002.png").unlink()
    with pytest.raises(InputError, match=r"catalog image of 'top-002' is missing on disk: rebuild the index"):
        editor.edit(EditRequest.of(person, garment_ids=["top-001", "top-002"], seed=3, **FAST))
    assert editor.edit(EditRequest.of(person, garment_ids=["top-001"], seed=3, **FAST)).seed == 3
    assert len(editor.search("striped shirt", "upper_body", 5)) == 5


def test_catalog_image_deleted_before_start_is_reported_and_never_offered(tiny_editor, person, own_catalog):
    catalog, index = own_catalog
    (catalog / "upper_body" / "top-002.png").unlink()
    editor = editor_sharing_models(tiny_editor, catalog_dir=catalog, index_dir=index)
    assert editor.searcher.problems == (
        f"missing-file: upper_body/top-002.png (id top-002) was indexed but no longer exists; run "
        f"`python -m fashion_rag index build {catalog}` to update the index",
    )
    hits = editor.search("shirt", "upper_body", 32)  # every other upper_body item
    assert len(hits) == 32 and "top-002" not in {hit.id for hit in hits}
    with pytest.raises(InputError, match=r"unknown catalog id 'top-002'"):
        editor.edit(EditRequest.of(person, garment_ids=["top-002"], seed=3, **FAST))
    assert editor.edit(EditRequest.of(person, garment_ids=[hits[0].id], seed=3, **FAST)).seed == 3
