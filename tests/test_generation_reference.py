"""The denoising loop, guidance and mask handling against diffusers' own StableDiffusionInpaintPipeline.

With a 9-channel UNet (stock SD2-inpainting layout: no pose channels) and a plain text prompt, our
pipeline must give the image diffusers gives from the same components, scheduler and generator.
Deliberate differences, none of which this setting exercises: the 18 pose channels (and the zero pose
map of the unconditional half), garment-token prompts, and our own input checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
from PIL import Image

from fashion_rag.generation.loading import load_generation_components
from fashion_rag.generation.pipeline import FashionRAGPipeline
from fashion_rag.generation.prompt import encode_text
from fashion_rag.tiny_bundle import seeded_init, tiny_unet_config


@pytest.fixture(scope="module")
def nine_channel_setup(tiny_sources):
    components = load_generation_components(tiny_sources, torch.device("cpu"), torch.float32)
    with seeded_init(123):
        unet = UNet2DConditionModel.from_config(tiny_unet_config(9)).eval()
    components.unet = unet
    rng = np.random.default_rng(7)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.uint8)
    mask[120:420, 90:300] = 255
    return components, frame, Image.fromarray(mask)


@pytest.mark.parametrize(("steps", "guidance", "num_images"), [(4, 7.5, 1), (3, 7.5, 2), (3, 1.0, 1)])
def test_matches_diffusers_inpaint_pipeline(nine_channel_setup, steps, guidance, num_images):
    components, frame, mask = nine_channel_setup
    prompt = "a photo of a model wearing a red dress"
    reference = StableDiffusionInpaintPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=components.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        prompt=prompt,
        image=frame,
        mask_image=mask,
        height=512,
        width=384,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_images_per_prompt=num_images,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images

    ours = FashionRAGPipeline.from_components(components)
    embeds = (
        encode_text(components.tokenizer, components.text_encoder, ""),
        encode_text(components.tokenizer, components.text_encoder, prompt),
    )
    actual = ours(
        frame,
        mask,
        "dresses",
        prompt_embeds=embeds,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_images=num_images,
        generator=torch.Generator().manual_seed(0),
    )
    assert actual.shape == expected.shape == (num_images, 512, 384, 3)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)
    # And the comparison is not vacuous: another seed gives another picture.
    other = ours(
        frame,
        mask,
        "dresses",
        prompt_embeds=embeds,
        num_inference_steps=steps,
        guidance_scale=guidance,
        num_images=num_images,
        generator=torch.Generator().manual_seed(1),
    )
    assert np.abs(other - expected).max() > 1e-2
