"""Serve mode's pieces without a cluster (fast): the retry on a lost worker, the pool's size and resources.
The same behaviour on a real local cluster is in test_serve.py (slow)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.request import EditRequest

ray = pytest.importorskip("ray")


class Response:
    def __init__(self, outcome) -> None:
        self.outcome = outcome

    def result(self):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class FakeHandle:
    """A DeploymentHandle whose `run` answers with the next outcome, recording the requests it was sent."""

    def __init__(self, outcomes) -> None:
        self.outcomes, self.sent = list(outcomes), []
        self.run = self

    def remote(self, request):
        self.sent.append(request)
        return Response(self.outcomes.pop(0))


def request() -> EditRequest:
    return EditRequest("upper_body", photo=Image.new("RGB", (30, 40)), description="red shirt", steps=1)


def test_a_lost_worker_costs_one_retry_with_the_same_seed():
    from fashion_rag.serve.pool import PooledEditor

    handle = FakeHandle([ray.exceptions.ActorDiedError(), "the result"])
    assert PooledEditor(None, handle, 2).run(request()) == "the result"
    first, second = handle.sent
    assert first.seed is not None and second.seed == first.seed  # drawn before the first try


def test_a_second_loss_gives_a_clear_message():
    from fashion_rag.serve.pool import PooledEditor, WorkerLostError

    handle = FakeHandle([ray.exceptions.ActorDiedError(), ray.exceptions.ActorUnavailableError("gone", None)])
    with pytest.raises(WorkerLostError, match="stopped twice .* try again"):
        PooledEditor(None, handle, 2).run(request())
    assert len(handle.sent) == 2


def test_a_workers_own_error_is_raised_as_itself_and_not_retried():
    from fashion_rag.serve.pool import PooledEditor

    cause = InputError("garment id 'x' is not in the catalog")
    wrapped = ray.exceptions.RayTaskError("run", "Traceback (most recent call last): ...", cause)
    handle = FakeHandle([wrapped])
    with pytest.raises(InputError) as raised:
        PooledEditor(None, handle, 2).run(request())
    assert raised.value is cause and len(handle.sent) == 1


def test_the_pool_autoscales_to_one_worker_per_gpu_or_is_fixed_by_replicas():
    from fashion_rag.serve.app import pool_options

    gpus = pool_options(None, gpus_in_cluster=8, cpus_in_cluster=64)
    options = gpus.deployment_options()
    # Each worker holds its running edit and the next one (edits still run one at a time: the generation lock).
    assert options["ray_actor_options"] == {"num_gpus": 1} and options["max_ongoing_requests"] == 2
    assert pool_options(None, gpus_in_cluster=8, cpus_in_cluster=64).slots == 16
    assert options["autoscaling_config"]["min_replicas"] == 1 and options["autoscaling_config"]["max_replicas"] == 8
    assert options["autoscaling_config"]["target_ongoing_requests"] == 1 and "num_replicas" not in options
    fixed = pool_options(2, gpus_in_cluster=0, cpus_in_cluster=2).deployment_options()
    assert fixed["num_replicas"] == 2 and fixed["ray_actor_options"] == {"num_cpus": 1}
    assert "autoscaling_config" not in fixed


def test_serve_flags_without_serve_are_refused():
    import subprocess
    import sys

    from .conftest import REPO

    done = subprocess.run(
        [sys.executable, "app.py", "--replicas", "2"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "--replicas and --ray-address belong to serve mode: add --serve" in done.stderr


def test_a_prepared_person_from_a_worker_has_no_pose_map_and_still_edits(tiny_editor):
    """What the pool's `prepare` hands back (no 14 MB pose map) still makes the request the page sends."""

    from fashion_rag.person.photo import load_photo

    from .conftest import ASTRONAUT
    from .test_request import FAST

    person = tiny_editor.prepare(load_photo(ASTRONAUT), "upper_body")
    slim = replace(person, pose_map=None)
    got = tiny_editor.run(EditRequest.of(slim, description="red shirt", seed=3, **FAST))
    expected = tiny_editor.edit(EditRequest.of(person, description="red shirt", seed=3, **FAST))
    np.testing.assert_array_equal(np.asarray(got.images[0]), np.asarray(expected.images[0]))


def test_a_worker_starts_without_generation_weights_and_each_edit_says_what_is_missing(tmp_path):
    """As in the local mode: the replica comes up (the page keeps photo, mask and search) and an edit names the
    missing parts with the command that fetches them, instead of Serve restarting the replica forever."""
    from fashion_rag.config import app_from_env, runtime_from_env
    from fashion_rag.errors import MissingWeightsError
    from fashion_rag.serve.worker import EditWorker

    runtime = runtime_from_env(environ={}, models="default", weights_dir=tmp_path / "weights", device="cpu")
    settings = app_from_env(environ={}, runtime=runtime, index_dir=tmp_path / "index", output_dir=tmp_path / "out")
    from fashion_rag.person.photo import load_photo

    from .conftest import ASTRONAUT

    worker = EditWorker(settings)
    edit = EditRequest("upper_body", photo=load_photo(ASTRONAUT), description="red shirt", steps=1)
    with pytest.raises(MissingWeightsError, match="python -m fashion_rag weights download"):
        worker.run(edit)


class InProcessHandle:
    """A DeploymentHandle over one EditWorker in this process, recording the names of the methods called."""

    def __init__(self, editor) -> None:
        from fashion_rag.serve.worker import EditWorker

        self.worker = EditWorker.__new__(EditWorker)  # its models: the session's tiny editor
        self.worker.editor = editor
        self.called: list[str] = []

    def __getattr__(self, name: str):
        method = getattr(self.worker, name)

        def remote(*args):
            self.called.append(name)
            outcome = method(*args)
            return outcome if isinstance(outcome, Iterator) else Response(outcome)  # a stream is iterated as such

        return type("Method", (), {"remote": staticmethod(remote)})()

    def options(self, stream: bool = False) -> InProcessHandle:
        return self


def test_an_api_edit_in_serve_mode_is_one_worker_call_with_the_local_pixels(tiny_editor, tmp_path):
    """The photo and the uploaded mask go with the request: one call (no separate `prepare` round trip), and the
    pixels of the local mode's prepare -> user mask -> edit."""
    from fashion_rag.person.photo import load_photo
    from fashion_rag.serve.pool import PooledEditor
    from fashion_rag.studio import api
    from fashion_rag.studio.masks import load_mask

    from .conftest import ASTRONAUT, as_upload

    mask = np.zeros((512, 512), np.uint8)
    mask[200:420, 120:400] = 255  # the photo's size: mapped onto the frame through its transform
    Image.fromarray(mask).save(tmp_path / "mask.png")
    photo_upload = {"path": as_upload(ASTRONAUT), "meta": {"_type": "gradio.FileData"}}
    mask_upload = {"path": as_upload(tmp_path / "mask.png"), "meta": {"_type": "gradio.FileData"}}
    handle = InProcessHandle(tiny_editor)
    pool = PooledEditor(tiny_editor, handle, 1)
    gallery, seed, _ = api.edit(
        pool, photo_upload, "upper_body", "", None, mask_upload, "red shirt", 4, 1, 7.5, "ddim", 1, True, "pooltest"
    )
    assert handle.called == ["run"] and seed == 4
    person = tiny_editor.with_user_mask(
        tiny_editor.prepare(load_photo(ASTRONAUT), "upper_body"), load_mask(mask_upload["path"])
    )
    expected = tiny_editor.edit(EditRequest.of(person, description="red shirt", seed=4, steps=1))
    got = Image.open(gallery[0]["image"]["path"]).convert("RGB")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected.images[0]))


def test_a_served_edit_streams_each_denoising_step_to_the_page(tiny_editor):
    """The page's progress bar follows the worker's steps (EditWorker.run_streaming), and the result is the one
    the worker made."""
    from fashion_rag.person.photo import load_photo
    from fashion_rag.serve.pool import PooledEditor

    from .conftest import ASTRONAUT

    handle, steps = InProcessHandle(tiny_editor), []
    edit = EditRequest("upper_body", photo=load_photo(ASTRONAUT), description="red shirt", seed=6, steps=3)
    result = PooledEditor(tiny_editor, handle, 1).run(edit, progress=lambda done, total: steps.append((done, total)))
    assert handle.called == ["run_streaming"] and steps == [(1, 3), (2, 3), (3, 3)]
    np.testing.assert_array_equal(np.asarray(result.images[0]), np.asarray(tiny_editor.run(edit).images[0]))


def test_workers_load_their_libraries_as_quietly_as_the_app_on_any_node():
    """A worker on another node does not inherit the head's environment: the quiet switches travel in
    runtime_env, and the Ray config file sets the same ones."""
    import yaml

    from fashion_rag.cli import QUIET_ENVIRONMENT
    from fashion_rag.serve.app import runtime_env

    worker_env = runtime_env()["env_vars"]
    config = yaml.safe_load((Path(__file__).parents[1] / "fashion_rag/serve/config.yaml").read_text())
    config_env = config["applications"][0]["runtime_env"]["env_vars"]
    for name, value in QUIET_ENVIRONMENT.items():
        assert worker_env[name] == value and str(config_env[name]) == value, name
    assert QUIET_ENVIRONMENT["TRANSFORMERS_VERBOSITY"] == "error"  # what hides the "UNEXPECTED" key tables
