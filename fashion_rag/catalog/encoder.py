"""The retrieval encoder: an open_clip model that embeds garment images and descriptions in one space.

The default is open_clip ViT-L-14 laion2b_s32b_b82k (docs/recipe.md, sources rule 1); any open_clip model in
the Hub layout (`open_clip_config.json` + `open_clip_pytorch_model.safetensors` or `.bin`) can replace it through the
`retrieval-encoder` part override, and the tiny bundle has a tiny random one. Embeddings are float32 and
L2-normalised, so an inner product is a cosine similarity.

`identity` names the model and the exact weights (sha256 of the weights file and of the config): an index
records it, and an index built by another encoder is refused (index/loaded.py).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashion_rag.files import sha256_file
from fashion_rag.images import to_rgb
from fashion_rag.weights import RETRIEVAL_CONFIG, RETRIEVAL_WEIGHTS, ModelSources, read_lock

logger = logging.getLogger(__name__)

PART = "retrieval-encoder"
CONFIG_FILE = RETRIEVAL_CONFIG
# The upstream names, in order of preference (weights/sources.json): safetensors, then the .bin pickle twin
# (open_clip reads either from a local dir, the .bin with weights_only=True).
WEIGHTS_FILES = RETRIEVAL_WEIGHTS


def weights_file(directory: Path) -> Path:
    """The first of WEIGHTS_FILES present in `directory` (the first name when none is)."""
    return next((directory / n for n in WEIGHTS_FILES if (directory / n).is_file()), directory / WEIGHTS_FILES[0])


DEFAULT_BATCH_SIZE = 16  # ViT-L-14 at 224 px: ~1 GB of activations per 16 images in fp32 on the CPU
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def weights_sha256(path: Path, lock_entry: dict | None = None) -> str:
    """sha256 of a weights file, read cheaply where it is already known.

    A file of the Hugging Face cache is a link to `blobs/<sha256>` (large files are stored by their hash);
    a file in `weights/` has its hash in the lock file, checked by `ModelSources.require`. Anything else is
    hashed (a few seconds for ViT-L-14's 1.7 GB).
    """
    if lock_entry and _SHA256.match(str(lock_entry.get("sha256", ""))):
        return str(lock_entry["sha256"])
    if path.is_symlink():
        target = path.resolve()
        if target.parent.name == "blobs" and _SHA256.match(target.name):
            return target.name
    return sha256_file(path)


def bundle_has_random_weights(bundle_info: dict) -> bool:
    """Whether a model bundle's weights are random: its bundle.json says `"random_weights": true`, or it is
    the tiny bundle (`"name": "tiny"`, which is seeded random noise by construction: tiny_bundle.py)."""
    return bool(bundle_info.get("random_weights", bundle_info.get("name") == "tiny"))


def white_background(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white (product photos often have a transparent background).

    The project's one RGB conversion (`fashion_rag.images.to_rgb`): the garment encoder sees the same pixels."""
    return to_rgb(image)


class RetrievalEncoder:
    """Embeds images and texts with one open_clip model. Build it with `from_sources` or `from_dir`.

    The counters `images_encoded` and `texts_encoded` count every input embedded since construction
    (tests use them to check that an index update embeds only what changed).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess,
        tokenizer,
        identity: str,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        info: dict[str, str] | None = None,
    ) -> None:
        self.device = torch.device(device)
        # fp16 on a GPU (twice the images per second, embeddings equal to ~1e-3); fp32 elsewhere.
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model = model.eval().to(self.dtype)
        self.preprocess = preprocess  # PIL image -> (3, H, W) tensor, open_clip's eval transform
        self.tokenizer = tokenizer  # list[str] -> (N, context_length) token ids
        self.identity = identity
        self.batch_size = batch_size
        self.info = dict(info or {"identity": identity})
        self.images_encoded = 0
        self.texts_encoded = 0
        self._count_lock = threading.Lock()  # searches embed texts from several threads at once
        with torch.inference_mode():
            probe = self.model.encode_text(self.tokenizer(["a"]).to(self.device))
        self.dim = int(probe.shape[-1])

    @classmethod
    def from_dir(
        cls,
        directory: Path | str,
        *,
        name: str | None = None,
        revision: str = "",
        weights_sha256_hint: str | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> RetrievalEncoder:
        """Load the open_clip model in `directory` (open_clip_config.json + open_clip_pytorch_model.safetensors or .bin)."""
        import open_clip

        directory = Path(directory)
        for path in (directory / CONFIG_FILE, weights_file(directory)):
            if not path.is_file():
                raise FileNotFoundError(2, "retrieval encoder file missing", str(path))
        weights_hash = weights_sha256_hint or weights_sha256(weights_file(directory))
        config_hash = sha256_file(directory / CONFIG_FILE)
        name = name or directory.name
        identity = f"{name}{'@' + revision if revision else ''} weights:{weights_hash[:16]} config:{config_hash[:8]}"
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{directory}", device=str(device))
        tokenizer = open_clip.get_tokenizer(f"local-dir:{directory}")
        info = {
            "identity": identity,
            "name": name,
            "revision": revision,
            "weights_sha256": weights_hash,
            "config_sha256": config_hash,
        }
        return cls(model, preprocess, tokenizer, identity, device=device, batch_size=batch_size, info=info)

    @classmethod
    def from_sources(
        cls, sources: ModelSources, device: torch.device | str = "auto", batch_size: int = DEFAULT_BATCH_SIZE
    ) -> RetrievalEncoder:
        """The `retrieval-encoder` part of `sources` (MissingWeightsError when it is not there). `device` may
        be "auto": the first of cuda, mps, cpu."""
        if str(device) == "auto":
            from fashion_rag.devices import pick_device

            device = pick_device("auto")
        directory = sources.require(PART)
        location = sources.locate(PART)
        part = location.part
        if sources.bundle_dir is not None:
            name, revision = f"{sources.kind}-bundle/{PART}", f"seed{sources.bundle_info.get('seed', '?')}"
        else:
            name, revision = part.repo_id, part.revision
        random_weights = bundle_has_random_weights(sources.bundle_info) if sources.bundle_dir is not None else False
        lock_entry = (
            read_lock(sources.weights_dir).get(f"{PART}/{weights_file(directory).name}")
            if location.where == "weights/"
            else None
        )
        hint = weights_sha256(weights_file(directory), lock_entry)
        encoder = cls.from_dir(
            directory, name=name, revision=revision, weights_sha256_hint=hint, device=device, batch_size=batch_size
        )
        if random_weights:
            encoder.info["random_weights"] = True  # search then ranks caption matches first (search.py)
        return encoder

    def _normalised(self, features: torch.Tensor) -> np.ndarray:
        features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    def prepare_image(self, image: Image.Image) -> torch.Tensor:
        """(3, H, W) model input for one image: transparency on white, then open_clip's eval transform.
        Pure and thread-safe: the index build runs it in its decoding threads."""
        return self.preprocess(white_background(image))

    @torch.inference_mode()
    def encode_prepared(self, prepared: Sequence[torch.Tensor]) -> np.ndarray:
        """(N, D) float32, L2-normalised embeddings of `prepare_image` outputs, in one batch (fp16 on a GPU)."""
        batch = torch.stack(list(prepared)).to(self.device, self.dtype)
        out = self._normalised(self.model.encode_image(batch))
        with self._count_lock:
            self.images_encoded += len(batch)
        return out

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        """(N, D) float32, L2-normalised image embeddings, computed `batch_size` images at a time."""
        size = batch_size or self.batch_size
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), size):
            batch = [self.prepare_image(im) for im in images[start : start + size]]
            out[start : start + len(batch)] = self.encode_prepared(batch)
        return out

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) float32, L2-normalised text embeddings (texts longer than 77 tokens are truncated)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokenizer(list(texts)).to(self.device)
        with self._count_lock:
            self.texts_encoded += len(texts)
        return self._normalised(self.model.encode_text(tokens))

    def __repr__(self) -> str:
        return f"RetrievalEncoder({self.identity!r}, dim={self.dim}, device={self.device})"
