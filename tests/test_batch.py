"""Many edits in one call, in the local mode (in turn): the plan, the `batch` endpoint and the `batch` command.
Serve mode's side (the pool) is in test_serve.py. Also: the local mode never imports Ray."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fashion_rag.batch import MAX_JOBS, plan_jobs
from fashion_rag.errors import InputError
from fashion_rag.person.photo import load_photo
from fashion_rag.request import EditRequest

from .conftest import ASTRONAUT, EXAMPLE_CATALOG, REPO
from .test_editor import run_cli


def test_jobs_are_every_photo_with_all_garments_or_with_each_in_turn():
    photos = [Image.new("RGB", (30, 40)), Image.new("RGB", (40, 30))]
    together = plan_jobs(photos, "dresses", ["a", "b"], seed=4, steps=3)
    assert [(r.photo.size, r.garment_ids) for r in together] == [((30, 40), ("a", "b")), ((40, 30), ("a", "b"))]
    each = plan_jobs(photos, "dresses", ["a", "b"], each_garment=True)
    assert [(r.photo.size, r.garment_ids) for r in each] == [
        ((30, 40), ("a",)),
        ((30, 40), ("b",)),
        ((40, 30), ("a",)),
        ((40, 30), ("b",)),
    ]
    assert all(r.seed == 4 and r.steps == 3 for r in together) and all(r.seed is None for r in each)


@pytest.mark.parametrize(
    ("photos", "ids", "each", "named"),
    [
        (0, ["a"], False, "at least one person photo"),
        (1, [], True, "each_garment needs garment ids"),
        (MAX_JOBS + 1, ["a"], False, f"{MAX_JOBS + 1} jobs .* at most {MAX_JOBS}"),
    ],
)
def test_a_bad_batch_says_what_is_accepted(photos, ids, each, named):
    with pytest.raises(InputError, match=named):
        plan_jobs([Image.new("RGB", (8, 8))] * photos, "dresses", ids, each_garment=each)


def test_the_batch_endpoint_streams_each_result_in_turn(studio_url, tiny_editor):
    from gradio_client import Client, handle_file

    ids = [hit.id for hit in tiny_editor.search("striped shirt", "upper_body", k=2)]
    client = Client(studio_url, verbose=False, analytics_enabled=False)
    job = client.submit(
        [handle_file(str(ASTRONAUT))], "upper_body", ",".join(ids), True, "", 3, 1, 7.5, "ddim", True, api_name="/batch"
    )
    final = job.result()
    dones = [update["done"] for update in job.outputs()]
    assert dones == [1, 2] and final["total"] == 2
    assert [r["job"] for r in final["results"]] == [0, 1]  # in turn, in order
    for result, garment in zip(final["results"], ids, strict=True):
        expected = tiny_editor.run(
            EditRequest("upper_body", photo=load_photo(ASTRONAUT), garment_ids=(garment,), seed=3, steps=1)
        )
        got = np.asarray(Image.open(result["images"][0]).convert("RGB"))
        np.testing.assert_array_equal(got, np.asarray(expected.images[0]))  # one torch thread everywhere (conftest)
        assert result["garment_ids"] == [garment] and result["seed"] == 3


def test_the_batch_endpoint_reports_a_failed_job_and_goes_on(studio_url):
    from gradio_client import Client, handle_file

    client = Client(studio_url, verbose=False, analytics_enabled=False)
    final = client.predict(
        [handle_file(str(ASTRONAUT))], "upper_body", "no-such-id", True, "", 3, 1, 7.5, "ddim", True, api_name="/batch"
    )
    assert final["done"] == 1 and "no-such-id" in final["results"][0]["error"]


@pytest.mark.slow  # ~30 s: a CLI process loading every model
def test_the_batch_command_writes_each_job_with_progress(tiny_bundle, tiny_settings, tmp_path):
    done = run_cli(
        "batch",
        "--person",
        str(ASTRONAUT),
        "--category",
        "upper_body",
        "--text",
        "striped shirt",
        "--top",
        "2",
        "--steps",
        "1",
        "--seed",
        "4",
        "--out-dir",
        str(tmp_path),
        "--json",
        "--models",
        str(tiny_bundle),
        "--catalog",
        str(EXAMPLE_CATALOG),
        "--index",
        str(tiny_settings.resolved_index_dir),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    jobs = json.loads(done.stdout)["jobs"]
    assert [job["job"] for job in jobs] == [0, 1] and all(job["seed"] == 4 for job in jobs)
    assert len({tuple(job["garment_ids"]) for job in jobs}) == 2
    for job in jobs:
        assert Image.open(job["outputs"][0]).size == Image.open(ASTRONAUT).size
        recipe = json.loads(next(tmp_path.glob(f"{job['job'] + 1:03d}-*.recipe.json")).read_text())
        assert recipe["garment_ids"] == job["garment_ids"] and recipe["seed"] == 4


def test_serve_mode_lets_the_page_run_as_many_edits_as_the_pool_has_workers(tiny_editor):
    from fashion_rag.serve.app import follow_pool
    from fashion_rag.studio import build_demo

    demo = build_demo(tiny_editor)
    gpu = [fn for fn in demo.fns.values() if fn.concurrency_id == "gpu"]
    # Generate, Compare picks, Dress the outfit, /edit, /batch, /compare, /outfit: one at a time
    assert len(gpu) == 7 and all(fn.concurrency_limit == 1 for fn in gpu)
    assert follow_pool(demo, 3) == 7 and all(fn.concurrency_limit == 3 for fn in gpu)


def test_the_local_mode_never_imports_ray():
    code = (
        "import sys, app; from fashion_rag.studio import build_demo; from fashion_rag import cli, batch, request;"
        " cli.build_parser(); app.parse_args([]); print('ray' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_batch_photos_that_name_server_paths_are_refused(studio_url):
    """Like the other endpoints: a photo in the list that is a server path, not an upload, is never read."""
    import httpx

    with httpx.Client(base_url=studio_url, timeout=60) as http:
        photo = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}
        payload = {"data": [[photo], "upper_body", "", False, "red shirt", 1, 1, 7.5, "ddim", True]}
        answer = http.post("/gradio_api/call/batch", json=payload)
    # Refused before it is queued, as every file value that is not an upload (studio/admission.py).
    assert answer.status_code == 422 and "is not a file uploaded to this server" in answer.text
    assert "root:" not in answer.text and '"done"' not in answer.text
