"""Handing freed heap back to the operating system after an edit.

An edit allocates and frees hundreds of MB (latents, activations, decoded images, PNG buffers). glibc
keeps freed memory in its arenas and returns it only from the top of the heap, so the server's resident
memory read anywhere between 0 and ~70 MB above what it uses, depending on where the last edit's
buffers happened to land (the soak's readings every 100 requests swung by that much with no trend).
`malloc_trim(0)` returns the free pages of every arena; it takes a few milliseconds, against an edit's
seconds. A Space's memory limit counts resident memory, so this is memory the app gets back. It runs after
each edit and preparation, within a second of the queue falling idle (studio/admission.py: searches free
buffers too), and once a minute.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None  # not glibc (macOS, musl): nothing to do


def hand_back_freed_heap() -> bool:
    """glibc's malloc_trim(0): True when it returned memory to the system, False otherwise or elsewhere."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "malloc_trim") and libc.malloc_trim(0))


_periodic: threading.Thread | None = None


def hand_back_periodically(every_s: float = 60.0) -> None:
    """Also trim every `every_s` seconds in a daemon thread (once per process): memory freed between
    requests, such as the state Gradio drops after a tab was closed, goes back without waiting for the
    next edit or preparation."""
    global _periodic
    if _periodic is not None and _periodic.is_alive():
        return

    def run() -> None:
        while True:
            time.sleep(every_s)
            hand_back_freed_heap()

    _periodic = threading.Thread(target=run, name="hand-back-freed-heap", daemon=True)
    _periodic.start()


MALLOC_ARENAS = 2  # glibc malloc arenas for the whole server (docs/RELIABILITY.md, "Soak")


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (mallopt M_ARENA_MAX), as MALLOC_ARENA_MAX would; False where not glibc.

    Gradio runs handlers on a pool of up to 40 worker threads and glibc gives each thread its own arena
    (up to 8 per core); freed memory fragments across them and the server's resident memory grew ~0.5 MB
    per request in the soak (+143 MB over 300 requests), against +8 MB with 2 arenas.
    """
    libc = _libc()
    if libc is None:
        return False
    m_arena_max = -8  # from glibc's malloc.h
    return bool(libc.mallopt(m_arena_max, arenas))
