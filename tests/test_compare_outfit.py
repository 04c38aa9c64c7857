"""Issue 23, "What to add": alternatives side by side (one batch, one seed) and an outfit in one go (a top,
then a bottom on its result, one recipe that `edit --recipe` repeats). Library, API and command line; the
page's panels are driven in a browser by tests/test_browser_compare.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from fashion_rag.alternatives import edit_alternatives
from fashion_rag.errors import InputError
from fashion_rag.generation.pipeline import FashionRAGPipeline
from fashion_rag.outfit import OutfitStep, dress_outfit, replay_outfit
from fashion_rag.request import EditRequest

from .conftest import ASTRONAUT

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CAMERAMAN = ASTRONAUT.parent / "cameraman.png"  # shows the knees: a lower-body edit can be prepared on it
FAST = {"steps": 2}  # EditRequest fields of a quick edit
TOPS = ("top-001", "top-002", "top-003")


def pixels(image) -> np.ndarray:
    return np.asarray(Image.open(image) if isinstance(image, str | Path) else image).astype(np.int16)


@pytest.fixture
def denoise_batches(monkeypatch):
    """The batch size of every denoising loop the pipeline runs (the calls still run)."""
    batches, real = [], FashionRAGPipeline._denoise

    def record(self, *args, **kwargs):
        batches.append(args[6])  # frame, mask, pose, prompts, steps, guidance, batch
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FashionRAGPipeline, "_denoise", record)
    return batches


def test_each_alternative_is_its_garments_edit_alone_made_in_one_batch(tiny_editor, denoise_batches):
    person = tiny_editor.prepare(Image.open(ASTRONAUT), "upper_body")
    results = edit_alternatives(tiny_editor, EditRequest.of(person, seed=5, **FAST), [((i,), ()) for i in TOPS])
    assert denoise_batches == [3]  # one denoising loop over the three garments
    assert [r.recipe["garment_ids"] for r in results] == [[i] for i in TOPS] and {r.seed for r in results} == {5}
    for garment, result in zip(TOPS, results, strict=True):
        alone = tiny_editor.edit(EditRequest.of(person, garment_ids=[garment], seed=5, **FAST))
        # The same noise, mask and seed as the single edit: equal up to the batch's float order (2 grey levels).
        assert np.abs(pixels(result.images[0]) - pixels(alone.images[0])).max() <= 2
        assert result.recipe == alone.recipe  # so its recipe repeats it alone
    first, second = (pixels(r.images[0]) for r in results[:2])
    assert np.abs(first - second).max() > 2  # the garments do differ


def test_bad_alternatives_are_refused_by_name(tiny_editor):
    person = tiny_editor.prepare(Image.open(ASTRONAUT), "upper_body")
    with pytest.raises(InputError, match=r"5 alternatives: compare 1 to 4"):
        edit_alternatives(tiny_editor, EditRequest.of(person, **FAST), [((f"top-00{i}",), ()) for i in range(1, 6)])
    with pytest.raises(InputError, match=r"dress-001 is not in the upper_body category"):
        edit_alternatives(tiny_editor, EditRequest.of(person, **FAST), [(("top-001",), ()), (("dress-001",), ())])


def outfit_ids(editor) -> tuple[str, str]:
    return "top-002", editor.search("blue jeans", "lower_body", 1)[0].id


def test_the_bottom_is_made_on_the_tops_result(tiny_editor):
    photo = Image.open(CAMERAMAN).convert("RGB")
    top, bottom = outfit_ids(tiny_editor)
    result = dress_outfit(
        tiny_editor,
        photo,
        [OutfitStep("upper_body", (top,)), OutfitStep("lower_body", (bottom,))],
        seed=4,
        **FAST,
    )
    original, first, outfit = pixels(photo), pixels(result.images[0]), pixels(result.images[1])
    top_pixels = np.abs(first - original).max(axis=2) > 0  # what the top's edit changed
    bottom_pixels = np.abs(outfit - first).max(axis=2) > 0  # what the bottom's edit changed on its result
    assert top_pixels.sum() > 10_000 and bottom_pixels.sum() > 10_000
    # The outfit keeps the new top: where the bottom step changed nothing, it is the top's result.
    kept = top_pixels & ~bottom_pixels
    assert kept.sum() > 0.9 * top_pixels.sum()
    np.testing.assert_array_equal(outfit[kept], first[kept])
    # The random weights hide the body on the top's result: the bottom took the photo's pose, and says so.
    assert any("used the photo's framing and pose instead" in note for note in result.results[1].notes)
    steps = result.recipe["outfit"]
    assert [s["category"] for s in steps] == ["upper_body", "lower_body"]
    assert [s["garment_ids"] for s in steps] == [[top], [bottom]] and result.recipe["seed"] == 4
    # One recipe repeats both steps, pixel for pixel.
    again = replay_outfit(tiny_editor, photo, json.loads(json.dumps(result.recipe)))
    np.testing.assert_array_equal(pixels(again.images[-1]), outfit)


@pytest.fixture
def recolouring_pipeline(monkeypatch):
    """A stand-in for trained weights: each edit recolours the garment region of its own input frame and keeps
    its shapes, as a real garment swap does, so the pose model still finds the body on the result. (The random
    test weights paint noise there, which hides the body and sends the outfit's second step to its fallback.)"""

    def recolour(self, image, mask, category, **kwargs):
        frame = np.asarray(image, dtype=np.float32) / 255.0  # (512, 384, 3)
        inside = np.asarray(mask, dtype=bool)[..., None]
        edited = np.where(inside, frame[..., [2, 0, 1]] * 0.9, frame)  # channels rotated inside the mask
        return np.repeat(edited[None], kwargs.get("num_images", 1), axis=0).astype(np.float32)

    monkeypatch.setattr(FashionRAGPipeline, "__call__", recolour)


def test_the_bottom_is_prepared_on_the_tops_result_when_the_pose_is_found_there(
    tiny_editor, recolouring_pipeline, monkeypatch
):
    """The outfit's main path (docs: fashion_rag/outfit.py): the second step's framing, pose and mask come from
    the first step's result itself, not from the photo's."""
    photo = Image.open(CAMERAMAN).convert("RGB")
    prepared_on, real_prepare = [], type(tiny_editor).prepare

    def record(self, image, category, **kwargs):
        prepared_on.append((pixels(image).copy(), category))
        return real_prepare(self, image, category, **kwargs)

    monkeypatch.setattr(type(tiny_editor), "prepare", record)
    top, bottom = outfit_ids(tiny_editor)
    parts = [OutfitStep("upper_body", (top,)), OutfitStep("lower_body", (bottom,))]
    result = dress_outfit(tiny_editor, photo, parts, seed=4, **FAST)
    first = pixels(result.images[0])
    assert not np.array_equal(first, pixels(photo))  # the top was recoloured
    # Two preparations, each on its step's input: the photo, then the top's result; no fallback to the photo.
    assert [category for _, category in prepared_on] == ["upper_body", "lower_body"]
    np.testing.assert_array_equal(prepared_on[0][0], pixels(photo))
    np.testing.assert_array_equal(prepared_on[1][0], first)
    assert not any("first result" in note for r in result.results for note in r.notes)
    # The bottom's edit starts from the top's result: outside the bottom's region nothing of the top changed.
    bottom_region = np.abs(pixels(result.images[1]) - first).max(axis=2) > 0
    assert 0 < bottom_region.sum() < bottom_region.size
    top_region = np.abs(first - pixels(photo)).max(axis=2) > 0
    kept = top_region & ~bottom_region
    assert kept.sum() > 0.5 * top_region.sum()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [OutfitStep("lower_body", ("bottom-001",)), OutfitStep("upper_body", ("top-001",))],
            "an outfit is upper_body then lower_body garments, not lower_body, upper_body",
        ),
        (
            [OutfitStep("upper_body", ("top-001",)), OutfitStep("lower_body")],
            "the outfit has no lower body garment: pick one for each part",
        ),
    ],
)
def test_a_bad_outfit_says_what_is_accepted(tiny_editor, steps, message):
    with pytest.raises(InputError, match=message):
        dress_outfit(tiny_editor, Image.open(CAMERAMAN), steps, **FAST)
    with pytest.raises(InputError, match=r"'outfit' must be a list of edit recipes"):
        replay_outfit(tiny_editor, Image.open(CAMERAMAN), {"outfit": "top-001"})


def test_the_compare_endpoint_makes_one_result_per_garment_with_one_seed(studio_url, tiny_editor, denoise_batches):
    client = Client(studio_url, verbose=False, analytics_enabled=False)
    answer = client.predict(
        handle_file(str(ASTRONAUT)), "upper_body", "top-001,top-003", None, 9, 2, 7.5, "ddim", True, api_name="/compare"
    )
    assert denoise_batches == [2] and answer["seed"] == 9
    results = answer["results"]
    assert [r["garment_ids"] for r in results] == [["top-001"], ["top-003"]]
    for result, garment in zip(results, ("top-001", "top-003"), strict=True):
        assert tiny_editor.searcher.caption(garment) in result["caption"]  # the garment by name
        recipe = json.loads(Path(result["recipe"]).read_text())
        assert recipe["garment_ids"] == [garment] and recipe["seed"] == 9
        assert Image.open(result["image"]).size == Image.open(ASTRONAUT).size  # full resolution
    with pytest.raises(Exception, match=r"garment_ids: give 1 to 4 catalog ids"):
        client.predict(
            handle_file(str(ASTRONAUT)), "upper_body", "", None, 9, 2, 7.5, "ddim", True, api_name="/compare"
        )


def test_an_outfit_made_through_the_api_is_repeated_by_edit_recipe(
    studio_url, tiny_editor, tiny_bundle, tiny_settings, tmp_path, capsys
):
    from fashion_rag.cli import main as cli_main

    top, bottom = outfit_ids(tiny_editor)
    client = Client(studio_url, verbose=False, analytics_enabled=False)
    answer = client.predict(handle_file(str(CAMERAMAN)), top, bottom, 12, 2, 7.5, "ddim", True, api_name="/outfit")
    first, outfit = (pixels(image) for image in answer["images"])
    assert answer["seed"] == 12 and np.abs(outfit - pixels(Image.open(CAMERAMAN).convert("RGB"))).max() > 0
    recipe = json.loads(Path(answer["recipe"]).read_text())
    assert [s["garment_ids"] for s in recipe["outfit"]] == [[top], [bottom]]
    out = tmp_path / "again.png"
    code = cli_main(
        [
            "edit",
            "--recipe",
            answer["recipe"],
            "--person",
            str(CAMERAMAN),
            "--category",
            "upper_body",
            "--models",
            str(tiny_bundle),
            "--index",
            str(tiny_settings.resolved_index_dir),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["prompt"] == "outfit" and report["seed"] == 12
    np.testing.assert_array_equal(pixels(out), outfit)  # the same pixels as the app's outfit
    np.testing.assert_array_equal(pixels(tmp_path / "again-step1.png"), first)
    with pytest.raises(Exception, match=r"the outfit has no lower body garment"):
        client.predict(handle_file(str(CAMERAMAN)), top, "", 12, 2, 7.5, "ddim", True, api_name="/outfit")


class PoolOf:
    """Serve mode's PooledEditor in miniature (serve/pool.py): the local editor, and `run_many` answering the
    requests in reverse order, as a pool may finish them."""

    def __init__(self, editor) -> None:
        self.local, self.requests = editor, []

    def __getattr__(self, name: str):
        return getattr(self.local, name)

    def run_many(self, requests):
        self.requests = list(requests)
        for index in reversed(range(len(self.requests))):
            yield index, self.local.run(self.requests[index]), None


def test_in_serve_mode_the_alternatives_spread_over_the_pool_with_one_seed(tiny_editor, denoise_batches):
    person = tiny_editor.prepare(Image.open(ASTRONAUT), "upper_body")
    pool = PoolOf(tiny_editor)
    results = edit_alternatives(pool, EditRequest.of(person, seed=6, **FAST), [((i,), ()) for i in TOPS[:2]])
    assert [r.garment_ids for r in pool.requests] == [(i,) for i in TOPS[:2]] and {r.seed for r in pool.requests} == {6}
    assert [r.recipe["garment_ids"] for r in results] == [[i] for i in TOPS[:2]]  # in the order asked, not finished
    batched = edit_alternatives(tiny_editor, EditRequest.of(person, seed=6, **FAST), [((i,), ()) for i in TOPS[:2]])
    for pooled, together in zip(results, batched, strict=True):
        assert np.abs(pixels(pooled.images[0]) - pixels(together.images[0])).max() <= 2


def test_zerogpu_is_asked_for_one_batch_or_one_edit_per_outfit_step():
    from fashion_rag.studio import gpu
    from fashion_rag.studio.compare import compare_duration
    from fashion_rag.studio.outfit import outfit_duration

    alternatives = [(("top-001",), ())] * 3
    request = EditRequest("upper_body", photo=Image.new("RGB", (8, 8)), seed=1, **FAST)
    assert compare_duration(None, request, alternatives) == gpu.gpu_seconds(FAST["steps"], 3)
    assert outfit_duration(None, None, [None, None], seed=1, **FAST) == 2 * gpu.gpu_seconds(FAST["steps"], 1)


def test_on_the_fast_path_the_comparison_replays_one_captured_graph_per_step(tiny_editor, monkeypatch):
    """Where CUDA graphs are captured (generation/graphs.py), 3 alternatives with guidance are the batch-6 graph at
    every step: one UNet launch per step for all of them. The capture is the stand-in of test_unet_graphs.py."""
    from fashion_rag.generation.graphs import CFG_BATCHES, UNetGraphRunner

    from .test_unet_graphs import StandInCapture

    person = tiny_editor.prepare(Image.open(ASTRONAUT), "upper_body")
    alternatives = [((i,), ()) for i in TOPS]
    eager = edit_alternatives(tiny_editor, EditRequest.of(person, seed=8, **FAST), alternatives)
    pipeline, stand_in = tiny_editor.pipeline, StandInCapture()
    runner = UNetGraphRunner(pipeline.unet, capture=stand_in)
    runner.capture(CFG_BATCHES, 77, (64, 48))
    monkeypatch.setattr(pipeline, "unet_runner", runner)
    replayed = edit_alternatives(tiny_editor, EditRequest.of(person, seed=8, **FAST), alternatives)
    assert stand_in.replays == FAST["steps"]  # one batch-6 replay a step, no eager call
    for graph, plain in zip(replayed, eager, strict=True):
        np.testing.assert_array_equal(pixels(graph.images[0]), pixels(plain.images[0]))
