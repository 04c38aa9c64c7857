"""Project error classes, and the one list of errors a user can act on.

Every class here is a `UserError`: its message names what was wrong and what is accepted. `USER_ERRORS`
adds the one standard error a user can act on too, a missing file (a photo path, a weights file, a
catalog folder). The command line prints `user_message(error)` as one line on stderr and exits with
status 2 (fashion_rag/cli.py); the page shows the same text as its error message
(fashion_rag/studio/errors.py); a batch gives it for the job that failed (fashion_rag/batch.py).
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user (or the server's owner) can act on: shown as its message, never as a traceback."""


class InputError(UserError, ValueError):
    """A user-supplied value is not acceptable. The message names the value and what is accepted."""


class MissingWeightsError(UserError, RuntimeError):
    """A model part is needed but not present. The message names the part and how to fetch it."""


class ModelsLoadingError(MissingWeightsError):
    """The app's background load has not finished the generation models yet. The message gives the progress.

    A MissingWeightsError (the models are not there yet), so every place that shows those shows this too."""


class WeightsIntegrityError(UserError, RuntimeError):
    """A weights file does not match its recorded sha256 or is not a safe checkpoint."""


class GpuOutOfMemoryError(UserError, RuntimeError):
    """The accelerator ran out of memory for a request that is otherwise valid. The message says what to lower."""


class CatalogIndexError(UserError, RuntimeError):
    """A catalog index is missing, corrupt, or was built by another encoder."""


# What the CLI, the page and a batch show as a message. FileNotFoundError is Python's own: a path the user
# gave (or a weights file removed under a running server) that is not there.
USER_ERRORS: tuple[type[Exception], ...] = (UserError, FileNotFoundError)


def user_message(error: BaseException) -> str:
    """The text a user reads for one of USER_ERRORS: the project's own message, or the missing file's name
    (Python's "[Errno 2] No such file or directory: 'x'" says it in a developer's words)."""
    if isinstance(error, FileNotFoundError) and error.filename is not None:
        return f"file not found: {error.filename}"
    return str(error)


def check_category(category: str) -> str:
    """Return `category` if it is one of the three garment categories, else raise InputError."""
    from fashion_rag.config import CATEGORIES

    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    return category
