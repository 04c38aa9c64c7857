"""Project error classes. The UI turns them into `gr.Error`, the CLI into one line on stderr."""

from __future__ import annotations


class InputError(ValueError):
    """A user-supplied value is not acceptable. The message names the value and what is accepted."""


class MissingWeightsError(RuntimeError):
    """A model part is needed but not present. The message names the part and how to fetch it."""


class ModelsLoadingError(MissingWeightsError):
    """The app's background load has not finished the generation models yet. The message gives the progress.

    A MissingWeightsError (the models are not there yet), so every place that shows those shows this too."""


class WeightsIntegrityError(RuntimeError):
    """A weights file does not match its recorded sha256 or is not a safe checkpoint."""


class GpuOutOfMemoryError(RuntimeError):
    """The accelerator ran out of memory for a request that is otherwise valid. The message says what to lower."""


class CatalogIndexError(RuntimeError):
    """A catalog index is missing, corrupt, or was built by another encoder."""


def check_category(category: str) -> str:
    """Return `category` if it is one of the three garment categories, else raise InputError."""
    from fashion_rag.config import CATEGORIES

    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    return category
