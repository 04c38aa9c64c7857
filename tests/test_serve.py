"""Serve mode on a local Ray cluster: 2 CPUs, the tiny bundle, 2 edit workers (slow: ~1-2 minutes to start).

Everything is compared with the local mode (the Editor in this process) for the same request and seed.
The cluster is this module's own: started by the fixture, stopped (serve.shutdown, ray.shutdown) at its end;
the one process killed is an edit replica of this cluster, by its pid.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from fashion_rag.person.photo import load_photo
from fashion_rag.request import EditRequest

from .conftest import ASTRONAUT
from .sequential_client import predict

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

GREY_LEVELS = 2  # the bound between serve and local pixels on CPU


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_editor, tiny_settings):
    from ray import serve

    from fashion_rag.serve.app import APP_NAME, deploy, runtime_env
    from fashion_rag.serve.pool import PooledEditor
    from fashion_rag.serve.worker import PoolOptions

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, runtime_env=runtime_env()
    )
    try:
        port = free_port()
        pool = PoolOptions(min_replicas=2, max_replicas=2, fixed=True)
        deploy(replace(tiny_settings, host="127.0.0.1", port=port), pool)
        handle = serve.get_deployment_handle("EditWorker", app_name=APP_NAME)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", handle=handle, pool=PooledEditor(tiny_editor, handle, 2))
    finally:
        serve.shutdown()
        ray.shutdown()


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False)


def local_edit(editor, seed: int, steps: int = 2, ids=(), description: str = "red shirt") -> np.ndarray:
    request = EditRequest(
        "upper_body",
        photo=load_photo(ASTRONAUT),
        garment_ids=tuple(ids),
        description=description,
        seed=seed,
        steps=steps,
    )
    return np.asarray(editor.run(request).images[0]).astype(int)


def close_to(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and int(np.abs(a - b).max()) <= GREY_LEVELS


def edit_through_page(url: str, seed: int, ids: str = "") -> tuple[np.ndarray, int]:
    from gradio_client import handle_file

    gallery, used, _ = predict(
        client(url),
        handle_file(str(ASTRONAUT)),
        "upper_body",
        ids,
        None,
        None,
        "red shirt",
        seed,
        2,
        7.5,
        "ddim",
        1,
        True,
        api_name="/edit",
    )
    return np.asarray(Image.open(gallery[0]["image"]).convert("RGB")).astype(int), used


def test_an_edit_through_the_served_page_gives_the_local_pixels(served, tiny_editor):
    ids = [hit.id for hit in tiny_editor.search("striped shirt", "upper_body", k=1)]
    pixels, used = edit_through_page(served.url, 5, ",".join(ids))
    assert used == 5 and close_to(pixels, local_edit(tiny_editor, 5, ids=ids))


def test_concurrent_clients_each_get_their_own_edit(served, tiny_editor):
    """4 gradio_client clients at once, one per thread, on a page whose edits run 2 at a time."""
    seeds = [11, 12, 13, 14]
    answers: dict[int, tuple[np.ndarray, int]] = {}
    errors: list[BaseException] = []

    def one(seed: int) -> None:
        try:
            answers[seed] = edit_through_page(served.url, seed)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=one, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors and sorted(answers) == seeds
    for seed in seeds:
        assert answers[seed][1] == seed and close_to(answers[seed][0], local_edit(tiny_editor, seed)), seed


def test_the_batch_endpoint_spreads_jobs_and_streams_each_result(served, tiny_editor):
    from gradio_client import handle_file

    ids = [hit.id for hit in tiny_editor.search("striped shirt", "upper_body", k=2)]
    job = client(served.url).submit(
        [handle_file(str(ASTRONAUT))], "upper_body", ",".join(ids), True, "", 3, 2, 7.5, "ddim", True, api_name="/batch"
    )
    updates = [update[0] if isinstance(update, tuple) else update for update in job]
    final = job.result()
    assert [u["done"] for u in updates][-1] == 2 and final["total"] == 2 and len(final["results"]) == 2
    for result in final["results"]:
        assert "error" not in result and result["seed"] == 3
        pixels = np.asarray(Image.open(result["images"][0]).convert("RGB")).astype(int)
        assert close_to(pixels, local_edit(tiny_editor, 3, ids=result["garment_ids"], description=""))


def test_a_workers_input_error_comes_back_as_its_one_line_message(served):
    from fashion_rag.errors import InputError

    request = EditRequest("upper_body", photo=load_photo(ASTRONAUT), garment_ids=("no-such-id",), seed=1, steps=1)
    with pytest.raises(InputError) as raised:
        served.pool.run(request)
    assert "no-such-id" in str(raised.value) and "Traceback" not in str(raised.value)


def test_a_served_edit_streams_its_denoising_steps_from_the_worker(served, tiny_editor):
    steps: list[tuple[int, int]] = []
    request = EditRequest("upper_body", photo=load_photo(ASTRONAUT), description="red shirt", seed=9, steps=3)
    result = served.pool.run(request, progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert close_to(np.asarray(result.images[0]).astype(int), local_edit(tiny_editor, 9, steps=3))


def worker_pids(handle) -> set[int]:
    pids: set[int] = set()
    for _ in range(40):  # one request at a time per replica: the router alternates between the two
        pids.add(handle.pid.remote().result())
        if len(pids) == 2:
            break
    return pids


def test_a_worker_killed_mid_edit_costs_one_retry_and_the_page_keeps_serving(served, tiny_editor, caplog):
    """Two long edits fill both workers; one worker's process is killed while they run. Both edits are
    answered (the lost one retried on the other worker, with its seed, so with the local pixels)."""
    pids = worker_pids(served.handle)
    assert len(pids) == 2
    steps, results, errors = 8, {}, []

    def one(seed: int) -> None:
        request = EditRequest(
            "upper_body", photo=load_photo(ASTRONAUT), description="red shirt", seed=seed, steps=steps
        )
        try:
            results[seed] = np.asarray(served.pool.run(request).images[0]).astype(int)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    with caplog.at_level(logging.WARNING, logger="fashion_rag.serve.pool"):
        threads = [threading.Thread(target=one, args=(seed,)) for seed in (21, 22)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)  # both edits are running (8 tiny steps take ~5 s on this 2-core box)
        os.kill(sorted(pids)[0], signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=300)
    assert not errors and sorted(results) == [21, 22]
    assert "edit worker lost during run" in caplog.text  # the kill hit a running edit, which was retried
    for seed in (21, 22):
        assert close_to(results[seed], local_edit(tiny_editor, seed, steps=steps)), seed
    pixels, used = edit_through_page(served.url, 31)  # the page still serves edits
    assert used == 31 and close_to(pixels, local_edit(tiny_editor, 31))
