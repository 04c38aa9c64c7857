"""Many edits at once: the jobs of a batch, run over the worker pool in serve mode or in turn locally.

    requests = plan_jobs(photos, "upper_body", ["top-001", "top-007"], each_garment=True, seed=7, steps=20)
    for done, (index, result, error) in enumerate(run_batch(editor, requests), start=1):
        print(f"{done}/{len(requests)}", index, error or result.seed)

Two shapes cover what designers ask for: one garment set on many photos (`each_garment=False`), and each of
several garments (say the top-k search results) on each photo (`each_garment=True`). Results come back as each
finishes; a failed job gives its message and the others go on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image

from fashion_rag.errors import USER_ERRORS, InputError, user_message
from fashion_rag.request import EditRequest

MAX_JOBS = 64  # one call's jobs: enough for a catalog page on a few photos, bounded for the queue


def plan_jobs(
    photos: Sequence[Image.Image],
    category: str,
    garment_ids: Sequence[str],
    each_garment: bool = False,
    **settings: Any,
) -> list[EditRequest]:
    """The requests of a batch: every photo with all `garment_ids`, or with each of them in turn.

    `settings` are EditRequest fields shared by every job (description, seed, steps, …). With a fixed seed every
    job uses it, so a job can be repeated alone with the same result.
    """
    if not photos:
        raise InputError("a batch needs at least one person photo")
    groups = [(garment,) for garment in garment_ids] if each_garment else [tuple(garment_ids)]
    if each_garment and not garment_ids:
        raise InputError("each_garment needs garment ids: give the catalog ids to try one by one")
    count = len(photos) * len(groups)
    if count > MAX_JOBS:
        raise InputError(f"{count} jobs ({len(photos)} photos x {len(groups)} garment sets): at most {MAX_JOBS}")
    return [EditRequest(category, photo=photo, garment_ids=group, **settings) for photo in photos for group in groups]


def run_batch(editor, requests: Sequence[EditRequest]) -> Iterator[tuple[int, Any, str | None]]:
    """(index, EditResult, None) or (index, None, message) per job, in the order they finish.

    A PooledEditor (serve mode) spreads them over its replicas; a local Editor runs them in turn.
    """
    if hasattr(editor, "run_many"):
        yield from editor.run_many(requests)
        return
    for index, request in enumerate(requests):
        try:
            yield index, editor.run(request), None
        except USER_ERRORS as error:
            yield index, None, user_message(error)
