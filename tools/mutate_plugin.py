"""pytest plugin for tools/mutate.py: every run copies one prebuilt tiny bundle instead of building its own.

The bundle is built once, by the unmutated code, into $FASHION_RAG_MUTATE_BUNDLE; `make_tiny_bundle`
(which conftest's `tiny_bundle` fixture calls) is replaced by a copy of it. Without that variable the
plugin does nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def pytest_configure(config) -> None:
    prebuilt = os.environ.get("FASHION_RAG_MUTATE_BUNDLE")
    if not prebuilt:
        return
    import fashion_rag.tiny_bundle as tiny_bundle

    def copy_prebuilt(directory: Path | str, seed: int = 0) -> Path:
        assert seed == 0, "the prebuilt bundle has seed 0"
        directory = Path(directory)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(prebuilt, directory)
        return directory

    tiny_bundle.make_tiny_bundle = copy_prebuilt
