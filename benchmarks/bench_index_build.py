"""Index build throughput (issue 13, item 5): images per second through the real build path.

    python benchmarks/bench_index_build.py [--images 512] [--folder DIR] [--encoder tiny|vit-l-14]
                                           [--workers 0 2] [--device cpu|cuda]

The images are either ITEMS synthetic garment-sized JPEGs (768x1024, Dress Code's size, smooth colour
fields with stripes, so they decode like photos of that size) or every image in `--folder` (for example
a folder of real catalog photos). For each number of decoding workers, `embed_images` (what
`index build` runs) embeds them all, and the rate is images / wall time. Also timed on their own: the
decoding and preprocessing alone (the workers' part) and the encoder alone on already prepared batches.

`--encoder tiny` is the tiny bundle's open_clip model (what the tests run); `vit-l-14` is open_clip's
full-size ViT-L-14 architecture (the retrieval encoder of weights/sources.json) with random weights:
it costs what the real one costs. On a GPU the encoder runs in fp16, as RetrievalEncoder does.
Prints a markdown table with the machine, the versions and the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def write_images(folder: Path, count: int) -> list[Path]:
    """`count` distinct 768x1024 JPEGs: a colour gradient, stripes and noise, different in each."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:1024, 0:768]
    paths = []
    for n in range(count):
        base = rng.uniform(40, 215, size=3)
        stripes = 25 * np.sin(rows / (6 + n % 17) + cols / (40 + n % 23))[..., None]
        noise = rng.normal(0, 6, size=(1024, 768, 1))
        pixels = np.clip(base + stripes + noise, 0, 255).astype(np.uint8)
        path = folder / f"garment-{n:05d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_encoder(kind: str, device: str, batch_size: int, work: Path):
    from fashion_rag.catalog.encoder import RetrievalEncoder

    if kind == "tiny":
        from fashion_rag.tiny_bundle import make_tiny_bundle
        from fashion_rag.weights import ModelSources

        bundle = make_tiny_bundle(work / "tiny-bundle")
        return RetrievalEncoder.from_sources(ModelSources(str(bundle)), device=device, batch_size=batch_size)
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-L-14", pretrained=None, device=device)
    tokenizer = open_clip.get_tokenizer("ViT-L-14")
    return RetrievalEncoder(model, preprocess, tokenizer, "ViT-L-14 random", device=device, batch_size=batch_size)


def time_decoding(pending, encoder, batch_size: int, workers: int) -> float:
    from fashion_rag.catalog.embedding import _decoded_batches

    started = time.perf_counter()
    for _ in _decoded_batches(pending, batch_size, workers, encoder.prepare_image):
        pass
    return time.perf_counter() - started


def time_encoding(pending, encoder, batch_size: int) -> float:
    from PIL import Image

    batches = []
    for start in range(0, len(pending), batch_size):
        batch = []
        for _, path in pending[start : start + batch_size]:
            with Image.open(path) as image:
                batch.append(encoder.prepare_image(image))
        batches.append(batch)
    started = time.perf_counter()
    for batch in batches:
        encoder.encode_prepared(batch)
    if encoder.device.type == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="synthetic images to write (without --folder)")
    parser.add_argument("--folder", type=Path, help="embed the images of this folder instead")
    parser.add_argument("--encoder", choices=("tiny", "vit-l-14"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="decoding threads (0: inline)")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from fashion_rag.catalog.embedding import embed_images

    with tempfile.TemporaryDirectory(prefix="bench-build-") as work:
        if args.folder is not None:
            paths = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            source = f"{len(paths)} images of {args.folder}"
        else:
            paths = write_images(Path(work) / "images", args.images)
            source = f"{len(paths)} synthetic 768x1024 JPEGs"
        if not paths:
            parser.error(f"no image ({', '.join(sorted(IMAGE_SUFFIXES))}) in {args.folder}")
        pending = [(f"{n:064x}", path) for n, path in enumerate(paths)]  # embed_images keys vectors by sha256
        encoder = load_encoder(args.encoder, args.device, args.batch_size, Path(work))
        encoder.encode_prepared([encoder.prepare_image(Image.new("RGB", (768, 1024)))] * 2)  # warm-up
        load_before = os.getloadavg()
        rows = []
        for workers in args.workers:
            decode_s = time_decoding(pending, encoder, args.batch_size, workers)
            started = time.perf_counter()
            vectors, failed = embed_images(pending, encoder, batch_size=args.batch_size, workers=workers)
            build_s = time.perf_counter() - started
            assert len(vectors) == len(paths) and not failed, (len(vectors), failed)
            rows.append((workers, len(paths) / decode_s, len(paths) / build_s))
        encode_s = time_encoding(pending, encoder, args.batch_size)
        load_after = os.getloadavg()

    print(f"\n{source}, encoder {args.encoder} ({encoder.dtype}, {encoder.device}), batch {args.batch_size}")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}, "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    print("\n| decoding workers | decode + preprocess alone, images/s | **embed_images (the build), images/s** |")
    print("|---:|---:|---:|")
    for workers, decode_rate, build_rate in rows:
        print(f"| {workers} | {decode_rate:.1f} | **{build_rate:.1f}** |")
    print(f"\nencoder alone on prepared batches: {len(paths) / encode_s:.1f} images/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
