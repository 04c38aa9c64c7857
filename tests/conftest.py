"""Shared fixtures. Nothing here downloads: models come from the tiny bundle, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight bundle (seed 0), written through `make_tiny_bundle`."""
    from fashion_rag.tiny_bundle import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_sources(tiny_bundle: Path):
    from fashion_rag.weights import ModelSources

    return ModelSources(str(tiny_bundle))
