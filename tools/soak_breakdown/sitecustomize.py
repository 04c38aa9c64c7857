"""Loaded into the soak's server by tools/soak_breakdown/run.py (PYTHONPATH): on SIGUSR1 it appends one JSON line
of where the server's memory is to $SOAK_BREAKDOWN_OUT. Not part of the app."""

import ctypes
import gc
import json
import os
import signal
import sys
import tempfile

MIB = 2**20


class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2, field for field
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def pymalloc_arenas() -> int:
    """CPython's object arenas in use, from sys._debugmallocstats (which writes to descriptor 2)."""
    fd, path = tempfile.mkstemp()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    with open(path) as stats:
        lines = [line for line in stats if line.startswith("# arenas allocated current")]
    os.unlink(path)
    return int(lines[0].split("=")[1].replace(",", "")) if lines else -1


def record(signum, frame) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    with open("/proc/self/status") as proc:
        status = {line.split(":")[0]: int(line.split()[1]) // 1024 for line in proc if line.startswith("Rss")}
    row = {
        "rss_anon_mb": status.get("RssAnon"),
        "rss_file_mb": status.get("RssFile"),
        "malloc_in_use_mb": round(info.uordblks / MIB, 1),
        "malloc_free_mb": round(info.fordblks / MIB, 1),
        "malloc_mmapped_mb": round(info.hblkhd / MIB, 1),
        "python_objects": len(gc.get_objects()),
        "pymalloc_arenas": pymalloc_arenas(),
    }
    with open(os.environ["SOAK_BREAKDOWN_OUT"], "a") as out:
        out.write(json.dumps(row) + "\n")


if os.environ.get("SOAK_BREAKDOWN_OUT") and sys.argv and sys.argv[0].endswith("app.py"):
    signal.signal(signal.SIGUSR1, record)
