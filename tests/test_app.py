"""The studio: import without models, the page, and the named API endpoints through gradio_client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from .conftest import ASTRONAUT, EXAMPLE_CATALOG, REPO
from .sequential_client import predict


def test_app_imports_without_loading_models():
    code = "import sys, app; print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'transformers', 'open_clip', 'mediapipe') if m in sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_page_builds_with_every_control(tiny_editor):
    from app import build_demo

    demo = build_demo(tiny_editor)
    ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    expected = {
        "person-upload",
        "category",
        "mask-editor",
        "pose-preview",
        "description",
        "top-k",
        "search-button",
        "results",
        "picks",
        "own-garment",
        "generate-button",
        "compare",
        "show-mask",
        "samples",
        "downloads",
        "history",
        "result-note",
        "plan-note",
        "seed-used",
        "advanced",
        "steps",
        "guidance",
        "seed",
        "scheduler",
        "mask-variant",
        "mask-grow",
        "mask-shrink",
        "mask-reset",
        "grow-px",
        "category-suggestion",
        "paste-back",
        "num-images",
        "status",
        "compare-picks",
        "history-pair",
        "side-by-side",
        "side-downloads",
        "side-note",  # studio/compare.py
        "outfit-top-text",
        "outfit-top",
        "outfit-bottom-text",
        "outfit-bottom",
        "outfit-button",
        "outfit-result",
        "outfit-downloads",
        "outfit-note",
    }  # studio/outfit.py
    assert expected <= ids
    names = {dep.api_name for dep in demo.fns.values() if dep.api_visibility == "public"}
    assert names == {"prepare", "search", "edit", "batch", "compare", "outfit"}
    # The API is declared with gr.api from typed functions (no hidden components): its parameters are the
    # functions' own, in the order README's client example passes them.
    info = demo.get_api_info()["named_endpoints"]
    assert [p["parameter_name"] for p in info["/edit"]["parameters"]] == [
        "photo",
        "category",
        "garment_ids",
        "garment_image",
        "mask",
        "description",
        "seed",
        "steps",
        "guidance",
        "sampler",
        "num_images",
        "paste_back",
    ]
    assert [p["parameter_name"] for p in info["/search"]["parameters"]] == ["text", "category", "k"]
    assert [p["parameter_name"] for p in info["/compare"]["parameters"]] == [
        "photo",
        "category",
        "garment_ids",
        "mask",
        "seed",
        "steps",
        "guidance",
        "sampler",
        "paste_back",
    ]
    assert [p["parameter_name"] for p in info["/outfit"]["parameters"]] == [
        "photo",
        "upper_ids",
        "lower_ids",
        "seed",
        "steps",
        "guidance",
        "sampler",
        "paste_back",
    ]
    assert len(info["/prepare"]["returns"]) == 5 and len(info["/edit"]["returns"]) == 3
    hidden = [b for b in demo.blocks.values() if getattr(b, "visible", True) is False and b.elem_id is None]
    assert hidden == []


def test_status_names_the_bundle_device_and_search_mode(tiny_editor):
    from app import status_markdown

    text = status_markdown(tiny_editor)
    assert "tiny bundle" in text and "`cpu`" in text and "Generate:** ready" in text
    # A designer's words on the line, the developer's terms folded under Details (issue 23, item 7).
    line, details = text.split("<details", 1)
    assert "by the words of your description and by the look" in line and "from the body's pose" in line
    for developer in ("hybrid", "BM25", "offline path", "UNet"):
        assert developer not in line, developer
    assert "search: hybrid" in details and "masks: offline path" in details


@pytest.fixture(scope="module")
def client(studio_url):
    return Client(studio_url, verbose=False)


def test_prepare_endpoint_returns_frame_mask_and_keypoints(client):
    frame, mask, overlay, pose, info = predict(
        client, handle_file(str(ASTRONAUT)), "upper_body", "box", api_name="/prepare"
    )
    assert Image.open(frame).size == (384, 512) and Image.open(mask).size == (384, 512)
    assert Image.open(overlay).size == (384, 512) and Image.open(pose).size == (384, 512)
    mask_array = np.asarray(Image.open(mask).convert("L")) > 127
    assert 0.05 < mask_array.mean() < 0.8
    assert info["category"] == "upper_body" and len(info["keypoints"]) == 18
    assert info["keypoints"][0] is not None  # the nose


def test_search_endpoint_returns_ranked_hits_of_the_category(client):
    payload = predict(client, "red striped t-shirt", "upper_body", 4, api_name="/search")
    assert payload["mode"] == "hybrid" and len(payload["hits"]) == 4
    assert all(hit["category"] == "upper_body" for hit in payload["hits"])
    scores = [hit["score"] for hit in payload["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_edit_endpoint_seed_reproduces_and_recipe_reproduces_through_the_cli(
    client, tiny_bundle, tiny_settings, tmp_path
):
    ids = ",".join(hit["id"] for hit in predict(client, "striped shirt", "upper_body", 2, api_name="/search")["hits"])
    arguments = [
        handle_file(str(ASTRONAUT)),
        "upper_body",
        ids,
        None,
        None,
        "striped shirt",
        -1,
        2,
        7.5,
        "ddim",
        1,
        True,
    ]
    gallery, seed, recipe_path = predict(client, *arguments, api_name="/edit")
    first = np.asarray(Image.open(gallery[0]["image"]))
    assert first.shape == np.asarray(Image.open(ASTRONAUT)).shape
    assert 0 <= seed < 2**32
    arguments[6] = seed
    gallery_again, seed_again, _ = predict(client, *arguments, api_name="/edit")
    assert seed_again == seed
    np.testing.assert_array_equal(first, np.asarray(Image.open(gallery_again[0]["image"])))

    recipe = json.loads(Path(recipe_path).read_text())
    assert recipe["seed"] == seed and recipe["garment_ids"] == ids.split(",") and recipe["steps"] == 2
    out = tmp_path / "cli.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fashion_rag",
            "edit",
            "--person",
            str(ASTRONAUT),
            "--category",
            "upper_body",
            "--recipe",
            recipe_path,
            "--out",
            str(out),
            "--models",
            str(tiny_bundle),
            "--catalog",
            str(EXAMPLE_CATALOG),
            "--index",
            str(tiny_settings.resolved_index_dir),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(first, np.asarray(Image.open(out)))


def test_edit_endpoint_gives_several_images(client):
    gallery, _, _ = predict(
        client,
        handle_file(str(ASTRONAUT)),
        "upper_body",
        "top-001",
        None,
        None,
        "",
        5,
        2,
        7.5,
        "dpm++",
        2,
        True,
        api_name="/edit",
    )
    assert len(gallery) == 2


def test_bad_request_is_a_readable_error_and_the_next_one_works(client):
    with pytest.raises(Exception, match="unknown category 'hats'"):
        predict(client, "red dress", "hats", 3, api_name="/search")
    with pytest.raises(Exception, match="unknown catalog id"):
        predict(
            client,
            handle_file(str(ASTRONAUT)),
            "upper_body",
            "../../etc/passwd",
            None,
            None,
            "",
            1,
            2,
            7.5,
            "ddim",
            1,
            True,
            api_name="/edit",
        )
    assert predict(client, "red dress", "dresses", 2, api_name="/search")["hits"]


def test_generate_without_weights_explains_and_the_page_keeps_working(tiny_settings, tmp_path, monkeypatch):
    from dataclasses import replace

    from app import build_demo, status_markdown
    from fashion_rag.editor import Editor

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    runtime = replace(tiny_settings.runtime, models="default", weights_dir=tmp_path / "weights")
    editor = Editor.from_settings(replace(tiny_settings, runtime=runtime, output_dir=tmp_path / "outputs"))
    status = status_markdown(editor)
    assert (
        "Generate is unavailable" in status and "weights download sd2-inpainting fashion-rag garment-encoder" in status
    )
    assert "**Search:** by the words of the garments' captions only" in status and "search: lexical" in status
    demo = build_demo(editor)
    demo.queue()
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="missing model weights: sd2-inpainting, fashion-rag, garment-encoder"):
            predict(
                client,
                handle_file(str(ASTRONAUT)),
                "upper_body",
                "top-001",
                None,
                None,
                "",
                1,
                2,
                7.5,
                "ddim",
                1,
                True,
                api_name="/edit",
            )
        assert predict(client, "red striped shirt", "upper_body", 3, api_name="/search")["mode"] == "lexical"
        info = predict(client, handle_file(str(ASTRONAUT)), "upper_body", "box", api_name="/prepare")[4]
        assert info["mask_source"] == "offline"
    finally:
        demo.close()


def test_start_up_index_check_reuses_an_up_to_date_index_and_rebuilds_a_foreign_one(tiny_settings, tmp_path):
    """`make demo-tiny` then `make demo` with real weights must not leave search on the tiny encoder's index."""
    from dataclasses import replace

    from fashion_rag.catalog.index import read_manifest
    from fashion_rag.editor import Editor
    from fashion_rag.tiny_bundle import make_tiny_bundle

    index_dir = tmp_path / "index"

    def editor_for(bundle):
        runtime = replace(tiny_settings.runtime, models=str(bundle))
        return Editor.from_settings(replace(tiny_settings, runtime=runtime, index_dir=index_dir))

    first = editor_for(tiny_settings.runtime.models)
    first.ensure_index()
    built_with = read_manifest(index_dir).encoder_identity
    again = first.ensure_index()
    assert again.embedded == () and again.reused == 99  # up to date: nothing embedded again
    assert read_manifest(index_dir).encoder_identity == built_with
    other = editor_for(make_tiny_bundle(tmp_path / "other-bundle", seed=1))
    rebuilt = other.ensure_index()
    assert len(rebuilt.embedded) == 99 and rebuilt.previous == "rebuilt"
    assert rebuilt.rebuilt_because.startswith("it was built with another encoder")
    assert read_manifest(index_dir).encoder_identity != built_with
    assert other.searcher.mode == "hybrid"
