"""Per-step cost and cold start on the CPU, full-size architectures with random weights.

    python benchmarks/bench_pipeline_cpu.py [--steps 3] [--bundle DIR]

Builds (once, cached in .cache/full-size-bundle, ~6 GB) the full-size bundle from the committed
configs, then measures at 512x384 in fp32:
- per-step cost of our pipeline, (t(steps) - t(1)) / (steps - 1), beside diffusers'
  StableDiffusionInpaintPipeline on the same architecture (9-channel UNet, same VAE, text encoder and
  scheduler), measured the same way in the same run (issue 3 goal: within 5%);
- cold start: a fresh process from start to a loaded pipeline (the .pth -> safetensors conversion
  happens on the first start only, and is reported separately).
Prints a markdown table with machine info. A couple of steps are enough on the CPU: one step of the
full-size UNet at batch 2 takes seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_gpu_edit import cold_start, inputs  # noqa: E402
from full_size import build_full_size_bundle, full_size_unet, machine_description  # noqa: E402

from fashion_rag.generation.pipeline import FashionRAGPipeline  # noqa: E402
from fashion_rag.weights import ModelSources  # noqa: E402


def seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bundle", type=Path, default=REPO / ".cache" / "full-size-bundle")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = [("machine", machine_description()), ("date", datetime.date.today().isoformat())]

    if not (args.bundle / "bundle.json").is_file():
        start = time.perf_counter()
        build_full_size_bundle(args.bundle, device="cpu", dtype=torch.float32)
        rows.append(("full-size bundle build", f"{time.perf_counter() - start:.1f} s"))
        rows.append(("cold start, first (includes .pth -> safetensors)", f"{cold_start(args.bundle, 'cpu'):.1f} s"))
    rows.append(("cold start (process start to loaded pipeline)", f"{cold_start(args.bundle, 'cpu'):.1f} s"))

    pipeline = FashionRAGPipeline.from_sources(ModelSources(str(args.bundle)), "cpu", torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    frame, mask, pose, garments = inputs()
    tokens = pipeline.encode_garments(garments)

    def ours(n: int):
        return pipeline(
            frame,
            mask,
            "upper_body",
            garment_tokens=tokens,
            pose_map=pose,
            num_inference_steps=n,
            generator=torch.Generator().manual_seed(0),
        )

    from diffusers import StableDiffusionInpaintPipeline

    reference = StableDiffusionInpaintPipeline(
        vae=pipeline.vae,
        text_encoder=pipeline.text_encoder,
        tokenizer=pipeline.tokenizer,
        unet=full_size_unet(9, "cpu").eval(),
        scheduler=pipeline.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    reference.set_progress_bar_config(disable=True)
    mask_image = Image.fromarray((mask * 255).astype(np.uint8))

    def theirs(n: int):
        return reference(
            prompt="a photo of a model wearing a dress",
            image=frame,
            mask_image=mask_image,
            height=512,
            width=384,
            num_inference_steps=n,
            output_type="np",
            generator=torch.Generator().manual_seed(0),
        ).images

    with torch.inference_mode():
        ours(1)  # warm-up
        theirs(1)
        ours_step = (seconds(lambda: ours(args.steps), args.repeats) - seconds(lambda: ours(1), args.repeats)) / (
            args.steps - 1
        )
        theirs_step = (seconds(lambda: theirs(args.steps), args.repeats) - seconds(lambda: theirs(1), args.repeats)) / (
            args.steps - 1
        )
    rows.append(("per step, ours (27-ch UNet, CFG batch 2)", f"{ours_step:.2f} s"))
    rows.append(("per step, diffusers SD2 inpainting (9-ch)", f"{theirs_step:.2f} s"))
    rows.append(("ratio ours / diffusers", f"{ours_step / theirs_step:.3f}"))

    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
