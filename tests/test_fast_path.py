"""Each speed option against the default path on the tiny bundle (CPU), with its stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_rag.generation.pipeline import FashionRAGPipeline

STEPS = 3


@pytest.fixture(scope="module")
def pipeline(tiny_sources) -> FashionRAGPipeline:
    return FashionRAGPipeline.from_sources(tiny_sources, "cpu")


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(5)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.float32)
    mask[80:420, 60:320] = 1
    pose = rng.random((18, 512, 384), dtype=np.float32)
    garment = Image.fromarray(rng.integers(0, 256, (400, 300, 3), dtype=np.uint8))
    return frame, mask, pose, garment


def run(pipeline, inputs, **overrides):
    frame, mask, pose, garment = inputs
    arguments = dict(image=frame, mask=mask, category="dresses", garment_images=[garment], pose_map=pose,
                     num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0))  # fmt: skip
    arguments.update(overrides)
    return pipeline(**arguments)


def test_channels_last_gives_the_same_picture(pipeline, inputs):
    """Tolerance 5e-4, a seventh of one 8-bit level (another memory layout reorders float additions)."""
    default = run(pipeline, inputs)
    pipeline.unet.to(memory_format=torch.channels_last)
    pipeline.vae.to(memory_format=torch.channels_last)
    try:
        fast = run(pipeline, inputs)
    finally:
        pipeline.unet.to(memory_format=torch.contiguous_format)
        pipeline.vae.to(memory_format=torch.contiguous_format)
    np.testing.assert_allclose(fast, default, atol=5e-4, rtol=0)


def test_vae_slicing_of_low_vram_gives_the_same_pictures(pipeline, inputs):
    """--low-vram decodes one image at a time (and offloads models on a GPU): tolerance 1e-4 (batch-size
    dependent convolution kernels)."""
    default = run(pipeline, inputs, num_images=2)
    pipeline.vae.enable_slicing()
    try:
        sliced = run(pipeline, inputs, num_images=2)
    finally:
        pipeline.vae.disable_slicing()
    np.testing.assert_allclose(sliced, default, atol=1e-4, rtol=0)


def test_precomputed_garment_tokens_give_the_same_picture(pipeline, inputs):
    """The token cache's path: tokens computed once, passed in later. Bit-identical."""
    _, _, _, garment = inputs
    tokens = pipeline.encode_garments([garment])
    np.testing.assert_array_equal(
        run(pipeline, inputs, garment_images=None, garment_tokens=tokens), run(pipeline, inputs)
    )


@pytest.mark.slow  # inductor compiles the UNet for minutes on 2 cores: run by `make test-slow`
def test_compiled_unet_gives_the_same_picture(pipeline, inputs):
    """torch.compile (inductor on the CPU here; CUDA graphs on a GPU): tolerance 1e-3, fused kernels reorder maths."""
    default = run(pipeline, inputs)
    eager = pipeline.unet
    pipeline.unet = torch.compile(eager, fullgraph=True)
    try:
        compiled = run(pipeline, inputs)
    finally:
        pipeline.unet = eager
    np.testing.assert_allclose(compiled, default, atol=1e-3, rtol=0)


def test_dpm_solver_is_a_different_sampler_with_the_same_contract(pipeline, inputs):
    """DPM-Solver++ is not meant to give DDIM's picture; it must be deterministic and well-formed."""
    pipeline.use_scheduler("dpm++")
    try:
        first = run(pipeline, inputs)
        second = run(pipeline, inputs)
    finally:
        pipeline.use_scheduler("ddim")
    np.testing.assert_array_equal(first, second)
    assert first.shape == (1, 512, 384, 3) and np.isfinite(first).all()
