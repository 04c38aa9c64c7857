"""One family of user errors (issue 24): the same error is one line and exit status 2 on the command line,
the same clear message on the page (gr.Error, no traceback), and the same message for a failed batch job.

The list is `fashion_rag.errors.USER_ERRORS`; the text is `user_message`. Before issue 24 the command line,
the page and the batch each had a tuple of their own, and a missing file was one line in the CLI but "the
studio failed on this request (FileNotFoundError)" on the page and a crashed batch.
"""

from __future__ import annotations

import errno
import os

import gradio as gr
import pytest
from PIL import Image

from fashion_rag import cli
from fashion_rag.batch import run_batch
from fashion_rag.commands import search as search_command
from fashion_rag.errors import (
    USER_ERRORS,
    CatalogIndexError,
    GpuOutOfMemoryError,
    InputError,
    MissingWeightsError,
    ModelsLoadingError,
    UserError,
    WeightsIntegrityError,
)
from fashion_rag.request import EditRequest
from fashion_rag.studio.errors import user_errors_as_gradio
from fashion_rag.weights import HubError

from .conftest import ASTRONAUT, as_upload

WEIGHTS_FILE = "weights/fashion-rag/unet_120000.pth"

# (the error raised, the one message every surface must show for it)
CASES = {
    "weights-file-missing": (
        FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), WEIGHTS_FILE),
        f"file not found: {WEIGHTS_FILE}",
    ),
    "bad-photo": (
        InputError("photo 'holiday.heic' is not an image that can be read: upload a JPEG or PNG file"),
        "photo 'holiday.heic' is not an image that can be read: upload a JPEG or PNG file",
    ),
    "missing-weights": (
        MissingWeightsError("missing model weights: fashion-rag"),
        "missing model weights: fashion-rag",
    ),
    "models-loading": (ModelsLoadingError("the models are loading (2 of 5)"), "the models are loading (2 of 5)"),
    "hub": (HubError("the Hub could not be reached"), "the Hub could not be reached"),
    "integrity": (WeightsIntegrityError("unet_120000.pth: sha256 differs"), "unet_120000.pth: sha256 differs"),
    "index": (CatalogIndexError("the index was built by another encoder"), "the index was built by another encoder"),
    "out-of-memory": (
        GpuOutOfMemoryError("the GPU ran out of memory: ask for fewer images"),
        "the GPU ran out of memory: ask for fewer images",
    ),
}


def cli_run(monkeypatch, capsys, error: BaseException) -> tuple[int, str, list[str]]:
    """`python -m fashion_rag search ...` in this process, with a search that raises `error`."""

    def raising(args):
        raise error

    monkeypatch.setattr(search_command, "run", raising)
    status = cli.main(["search", "red dress", "--category", "dresses"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err.splitlines()


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_error_is_one_cli_line_a_page_message_and_a_batch_message(monkeypatch, capsys, case):
    error, message = CASES[case]
    status, out, err = cli_run(monkeypatch, capsys, error)
    assert (status, out, err) == (2, "", [f"error: {message}"])

    with pytest.raises(gr.Error) as shown, user_errors_as_gradio():
        raise error
    assert shown.value.message == message and shown.value.print_exception is False

    class FailingEditor:
        def run(self, request):
            raise error

    job = EditRequest("dresses", photo=Image.new("RGB", (8, 8)))
    assert list(run_batch(FailingEditor(), [job])) == [(0, None, message)]


def test_every_project_error_is_a_user_error_and_a_server_fault_is_not():
    for error_class in (
        InputError,
        MissingWeightsError,
        ModelsLoadingError,
        HubError,
        WeightsIntegrityError,
        CatalogIndexError,
        GpuOutOfMemoryError,
    ):
        assert issubclass(error_class, UserError) and issubclass(error_class, USER_ERRORS)
    assert issubclass(InputError, ValueError) and issubclass(CatalogIndexError, RuntimeError)  # callers catch these
    assert not issubclass(ZeroDivisionError, USER_ERRORS) and not issubclass(KeyError, USER_ERRORS)
    with pytest.raises(gr.Error, match=r"the studio failed on this request \(KeyError\)"), user_errors_as_gradio():
        raise KeyError("a bug, not the user's doing")


def test_an_unreadable_photo_is_one_cli_line_and_a_clear_page_message(tiny_editor, monkeypatch, capsys, tmp_path):
    """The real paths: `prepare` on the command line and the page's upload handler, on the same bad file."""
    from fashion_rag.person.prepare import PersonPreparer
    from fashion_rag.studio import handlers

    monkeypatch.setattr(PersonPreparer, "from_sources", classmethod(lambda cls, *args, **kwargs: tiny_editor.preparer))
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is a text file, not a photo\n")
    readable = "is not an image that can be read: upload a JPEG, PNG, WebP, GIF, BMP or TIFF file"

    status = cli.main(["prepare", "--person", str(bad), "--category", "upper_body", "--out-dir", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.splitlines() == [
        f"error: photo '{bad}' {readable} (HEIC/AVIF phone photos: export them as JPEG first)"
    ]
    assert not (tmp_path / "o").exists()

    with pytest.raises(gr.Error) as shown, user_errors_as_gradio():
        handlers.prepare_upload(tiny_editor, as_upload(bad), "upper_body", "box")
    assert shown.value.message.startswith(f"holiday.jpg {readable}")
    # The page keeps serving: a good photo prepares after the refusal.
    state, *_ = handlers.prepare_upload(tiny_editor, as_upload(ASTRONAUT), "upper_body", "box")
    assert state is not None and state.frame.size == (384, 512)


def test_a_missing_photo_file_is_named_on_the_command_line(tiny_editor, monkeypatch, capsys, tmp_path):
    from fashion_rag.person.prepare import PersonPreparer

    monkeypatch.setattr(PersonPreparer, "from_sources", classmethod(lambda cls, *args, **kwargs: tiny_editor.preparer))
    missing = tmp_path / "nowhere.jpg"
    status = cli.main(["prepare", "--person", str(missing), "--category", "upper_body", "--out-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2 and captured.err.splitlines() == [f"error: photo '{missing}': no such file"]
