"""Loading the models after the page is up: what is loading, how far it got, and what failed.

The app launches its page first and loads the models in a background thread (`Editor.load_in_background`),
so the page answers within seconds of the process starting; the status line reads `LoadProgress` and
Generate refuses with "models still loading (N%)" until the generation models are ready. Photo, mask and
search work as soon as their own part has loaded (each part has its own lock in the editor).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

# The parts of a start-up load in the order they load, with their share of the progress bar: rough shares
# of a start with the published weights (the generation models are most of it).
LOAD_STEPS: tuple[tuple[str, int], ...] = (
    ("weights", 5),  # a Space fetches missing weights first (no-op elsewhere)
    ("person models", 10),  # pose and segmentation (mediapipe)
    ("catalog index", 20),  # retrieval encoder, index check, search
    ("generation models", 55),  # pipeline: UNet, VAE, text and garment encoders
    ("warm-up", 10),  # CUDA graph capture or compile warm-up (nothing on the CPU)
)


class LoadProgress:
    """Thread-safe record of a background load: started, the step running, the share done, a failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = False
        self._finished = False
        self._done: dict[str, float] = {}  # step -> seconds it took
        self._current: str | None = None
        self.problem: str | None = None  # why the load stopped, shown in the status line
        self.started_at: float | None = None

    def begin(self) -> None:
        """Mark the load as under way (before the page is built, so the page shows 'loading', not a load)."""
        with self._lock:
            self._started, self._finished, self._done, self.problem = True, False, {}, None
            self.started_at = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if name not in dict(LOAD_STEPS):
            raise ValueError(f"unknown load step {name!r}: use one of {', '.join(n for n, _ in LOAD_STEPS)}")
        with self._lock:
            self._current = name
        start = time.perf_counter()
        yield
        with self._lock:
            self._done[name] = time.perf_counter() - start
            self._current = None
        logger.info("load step %r done in %.1f s", name, self._done[name])

    def finish(self, problem: str | None = None) -> None:
        with self._lock:
            self._finished, self._current, self.problem = True, None, problem

    @property
    def loading(self) -> bool:
        """True from `begin` until `finish`."""
        with self._lock:
            return self._started and not self._finished

    @property
    def percent(self) -> int:
        with self._lock:
            if self._finished:
                return 100
            done = sum(weight for name, weight in LOAD_STEPS if name in self._done)
        return int(100 * done / sum(weight for _, weight in LOAD_STEPS))

    @property
    def current(self) -> str | None:
        with self._lock:
            return self._current

    def seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(self._done)

    def describe(self) -> str:
        """'loading models: 45% (generation models)' while loading; '' otherwise."""
        if not self.loading:
            return ""
        current = self.current
        return f"loading models: {self.percent}%" + (f" ({current})" if current else "")


def run_load(editor, progress: LoadProgress, before=None) -> None:
    """The background load: `before(editor)` (a Space's weight fetch), the index and search, then every model.

    A failure stops the load and is kept in `progress.problem` (the status line shows it); the page keeps
    serving what loaded.
    """
    try:
        if before is not None:
            with progress.step("weights"):
                before(editor)
        editor.load(progress)
    except Exception as error:  # a thread has no caller to raise to: the status line is where it shows
        logger.exception("loading the models failed")
        progress.finish(f"{type(error).__name__}: {error}")
        return
    progress.finish()
    total = time.perf_counter() - (progress.started_at or time.perf_counter())
    logger.info(
        "models loaded in %.1f s (%s)", total, ", ".join(f"{k} {v:.1f} s" for k, v in progress.seconds().items())
    )
