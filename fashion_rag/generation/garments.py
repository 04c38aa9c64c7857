"""Garment images -> garment tokens (docs/recipe.md, garment tokens rules 1-4).

Each garment image is composited on white where it is transparent (in-shop garment photos are on white;
`fashion_rag.images.to_rgb`, the project's one RGB conversion), stretched to 384x512 (W x H, aspect not kept) with
Pillow's default BICUBIC filter (the official loader calls `img.resize((384, 512))`), then given to the
CLIP image processor as uint8 (so its 1/255 rescale happens exactly once: shortest side 224 bicubic,
centre crop 224, CLIP mean/std). The vision tower's `last_hidden_state` (N, 257, 1280), taken before
its post layernorm, goes through the inversion adapter: (N, 16, 1024).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.images import FRAME_HEIGHT, FRAME_WIDTH, to_rgb

GARMENT_SIZE = (FRAME_WIDTH, FRAME_HEIGHT)  # (W, H): stretched to the frame's size, as in training


def garment_pixels(images: list[Image.Image], image_processor) -> torch.Tensor:
    """(N, 3, 224, 224) CLIP pixel values of garment images."""
    arrays = []
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise InputError(f"garment {index + 1} is a {type(image).__name__}, not an image: give a PNG or JPEG file")
        stretched = to_rgb(image).resize(GARMENT_SIZE, Image.Resampling.BICUBIC)
        arrays.append(np.array(stretched, dtype=np.uint8))  # writable copy
    return image_processor(images=arrays, return_tensors="pt").pixel_values


@torch.no_grad()
def encode_garments(images: list[Image.Image], image_processor, image_encoder, adapter) -> torch.Tensor:
    """(N, 16, token_width) garment tokens, in the order given."""
    pixels = garment_pixels(images, image_processor).to(image_encoder.device, image_encoder.dtype)
    hidden = image_encoder(pixel_values=pixels).last_hidden_state  # (N, 1 + patches, width)
    return adapter(hidden.to(adapter.dtype))
