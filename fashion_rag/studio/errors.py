"""Project errors as the page and the API show them: gr.Error with the project's own message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from fashion_rag.errors import (
    CatalogIndexError,
    GpuOutOfMemoryError,
    InputError,
    MissingWeightsError,
    WeightsIntegrityError,
)

# What a user (or the Space's owner) can act on: shown as the message, never as a traceback.
USER_ERRORS = (InputError, MissingWeightsError, WeightsIntegrityError, CatalogIndexError, GpuOutOfMemoryError)


@contextmanager
def user_errors_as_gradio() -> Iterator[None]:
    """Turn a project error into gr.Error; an out-of-memory error keeps its own title."""
    try:
        yield
    except GpuOutOfMemoryError as error:
        raise gr.Error(str(error), title="Out of GPU memory") from None
    except USER_ERRORS as error:
        raise gr.Error(str(error)) from None
