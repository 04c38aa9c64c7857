"""The clothes parser: SegFormer with the 18 ATR labels (docs/recipe.md, sources rule 1) -> a label map of the frame."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashion_rag.errors import MissingWeightsError
from fashion_rag.person.masks import NUM_ATR_LABELS


class ClothesParser:
    """`SegformerForSemanticSegmentation` and its image processor; `__call__(frame) -> (H, W) int64 labels`.

    Built from already-loaded objects; `from_pretrained` loads them from a part directory (the real
    `mattmdjaga/segformer_b2_clothes` or the tiny bundle's random one, whose labels are noise).
    """

    def __init__(self, model: torch.nn.Module, processor: object, device: torch.device):
        num_labels = getattr(model.config, "num_labels", None)
        if num_labels != NUM_ATR_LABELS:
            raise MissingWeightsError(
                f"the clothes parser has {num_labels} labels; the mask recipe needs the {NUM_ATR_LABELS} ATR labels"
            )
        self.model = model.eval().to(device)
        self.processor = processor
        self.device = device
        self._lock = threading.Lock()  # one forward at a time: CPU threads are shared anyway

    @classmethod
    def from_pretrained(cls, directory: Path | str, device: str | torch.device = "auto") -> ClothesParser:
        """Load the model and processor from a part directory (config.json, preprocessor_config.json, weights)."""
        from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

        from fashion_rag.devices import pick_device

        device = pick_device(device) if isinstance(device, str) else device
        model = SegformerForSemanticSegmentation.from_pretrained(str(directory))
        processor = SegformerImageProcessor.from_pretrained(str(directory))
        return cls(model, processor, device)

    @torch.inference_mode()
    def __call__(self, frame: Image.Image | np.ndarray) -> np.ndarray:
        """(H, W) int64 ATR labels of an RGB frame: logits upsampled bilinearly to the frame's size, argmax."""
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame))
        image = image.convert("RGB")
        inputs = self.processor(images=image, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, dtype=next(self.model.parameters()).dtype)
        with self._lock:
            logits = self.model(pixel_values=pixels).logits  # (1, 18, h/4, w/4) of the processor's size
        upsampled = torch.nn.functional.interpolate(
            logits.float(), size=(image.height, image.width), mode="bilinear", align_corners=False
        )
        return upsampled.argmax(dim=1)[0].cpu().numpy().astype(np.int64)
