"""Project errors as the page and the API show them: gr.Error with the project's own message."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from fashion_rag.errors import USER_ERRORS, GpuOutOfMemoryError, user_message

logger = logging.getLogger(__name__)

# What a user (or the Space's owner) can act on (fashion_rag.errors.USER_ERRORS, the list the command line
# uses too): shown as its message, never as a traceback.


@contextmanager
def user_errors_as_gradio() -> Iterator[None]:
    """Turn a project error into gr.Error with one log line and no traceback; out-of-memory keeps its title.

    Anything else is a fault of the server, not of the request: it is logged with its traceback and the
    caller gets a message that says so, never a blank error.
    """
    try:
        yield
    except GpuOutOfMemoryError as error:
        logger.warning("refused: %s", short(user_message(error)))
        raise gr.Error(user_message(error), title="Out of GPU memory", print_exception=False) from None
    except USER_ERRORS as error:
        logger.info("refused: %s", short(user_message(error)))
        raise gr.Error(user_message(error), print_exception=False) from None
    except gr.Error:
        raise
    except Exception as error:
        logger.exception("request failed inside the studio")
        raise gr.Error(
            f"the studio failed on this request ({type(error).__name__}); it is logged on the server, "
            "and the next request is served as usual",
            print_exception=False,
        ) from None


def short(text: str, limit: int = 300) -> str:
    """One log line: newlines folded, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
