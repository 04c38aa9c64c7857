"""GPU edit benchmark with full-size random weights (no downloads): latency, per-step cost, memory, start-up.

    python benchmarks/bench_gpu_edit.py [--runs 10] [--out results.json]
    python benchmarks/bench_gpu_edit.py --quick        # tiny bundle on CPU: checks the script itself

Builds the full-size bundle from weights/configs/ (random weights cost the same compute as the real
ones), then measures, at 512x384 in fp16:
- cold start: a fresh process from start to a loaded pipeline (first start converts the .pth files
  to safetensors; the second is the everyday case);
- end-to-end edit latency p50/p90 over `--runs` runs after warm-up (two garment images encoded,
  prompts, denoising, VAE encode/decode) for DDIM 50 and DPM-Solver++ 25, each with and without
  torch.compile (compile warm-up reported separately), and with --low-vram;
- per-step UNet cost, (t(50 steps) - t(10 steps)) / 40, beside diffusers' StableDiffusionInpaintPipeline
  on the same architecture (9-channel UNet, same VAE and text encoder) measured the same way;
- peak GPU memory (torch.cuda.max_memory_allocated).
Prints a markdown table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import build_full_size_bundle, full_size_unet, machine_description  # noqa: E402

from fashion_rag.generation.pipeline import FashionRAGPipeline  # noqa: E402
from fashion_rag.weights import ModelSources  # noqa: E402

RESULTS: dict[str, object] = {}


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def record(name: str, value: object, out: Path | None) -> None:
    RESULTS[name] = value
    print(f"{name}: {value}", flush=True)
    if out is not None:
        out.write_text(json.dumps(RESULTS, indent=2, default=str))


def inputs():
    rng = np.random.default_rng(0)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.float32)
    mask[100:420, 70:310] = 1
    pose = rng.random((18, 512, 384), dtype=np.float32)
    garments = [Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8)) for _ in range(2)]
    return frame, mask, pose, garments


def edit_function(pipeline: FashionRAGPipeline):
    """edit(n_steps): one full edit of the benchmark's inputs (two garments, pose map, fixed seed)."""
    frame, mask, pose, garments = inputs()

    def edit(n_steps: int):
        return pipeline(frame, mask, "upper_body", garment_images=garments, pose_map=pose,
                        num_inference_steps=n_steps, generator=torch.Generator().manual_seed(0))  # fmt: skip

    return edit


def measure_latency(label: str, edit, n_steps: int, runs: int, warmup: int, out: Path | None) -> None:
    """Record p50/p90 seconds (and peak GPU memory) of `runs` edits after `warmup` ones."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times = timed(lambda: edit(n_steps), runs, warmup)
    row = {"p50_s": round(percentile(times, 50), 3), "p90_s": round(percentile(times, 90), 3)}
    if torch.cuda.is_available():
        row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    record(label, row, out)


def cold_start(bundle: Path, device: str) -> float:
    """Seconds from process start to a pipeline loaded on `device` (python start-up and imports included)."""
    code = (
        f"import sys, torch; sys.path.insert(0, {str(REPO)!r})\n"
        "from fashion_rag.generation.pipeline import FashionRAGPipeline\n"
        "from fashion_rag.weights import ModelSources\n"
        f"p = FashionRAGPipeline.from_sources(ModelSources({str(bundle)!r}), {device!r})\n"
        "torch.cuda.synchronize() if torch.cuda.is_available() else None\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bundle", type=Path, default=None, help="reuse a full-size bundle folder")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    parser.add_argument("--quick", action="store_true", help="tiny bundle, few steps: checks the script on CPU")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip: cold compile lowvram reference")
    parser.add_argument(
        "--compile-mode", default="reduce-overhead", help="torch.compile mode: default, reduce-overhead, ..."
    )
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    steps, short_steps, dpm_steps = (50, 10, 25) if not args.quick else (4, 2, 3)
    record("machine", machine_description(), args.out)
    record("date", datetime.date.today().isoformat(), args.out)

    workdir = Path(tempfile.mkdtemp(prefix="fashion-rag-bench-"))
    if args.quick:
        from fashion_rag.tiny_bundle import make_tiny_bundle

        bundle = make_tiny_bundle(workdir / "tiny")
    elif args.bundle is not None and (args.bundle / "bundle.json").is_file():
        bundle = args.bundle
    else:
        start = time.perf_counter()
        bundle = build_full_size_bundle(args.bundle or workdir / "full", device=device, dtype=torch.float16)
        record("bundle_build_s", round(time.perf_counter() - start, 1), args.out)

    if "cold" not in args.skip:
        record("cold_start_first_s (includes .pth -> safetensors)", round(cold_start(bundle, device), 2), args.out)
        record("cold_start_s", round(cold_start(bundle, device), 2), args.out)

    pipeline = FashionRAGPipeline.from_sources(ModelSources(str(bundle)), device, dtype)
    pipeline.set_progress_bar_config(disable=True)
    pipeline.enable_fast_path()
    edit = edit_function(pipeline)
    frame, mask, _, _ = inputs()

    def latency(label: str, n_steps: int) -> None:
        measure_latency(label, edit, n_steps, args.runs, args.warmup, args.out)

    latency(f"edit_ddim{steps}", steps)
    per_step_runs = max(3, args.runs // 2)
    long_t = statistics.median(timed(lambda: edit(steps), per_step_runs, 1))
    short_t = statistics.median(timed(lambda: edit(short_steps), per_step_runs, 1))
    ours_step = (long_t - short_t) / (steps - short_steps)
    record("per_step_ms_ours", round(ours_step * 1000, 2), args.out)

    if "reference" not in args.skip:
        from diffusers import StableDiffusionInpaintPipeline

        reference_unet = (full_size_unet(9, device) if not args.quick else _tiny_nine_channel_unet()).to(device, dtype)
        if device == "cuda":
            reference_unet.to(memory_format=torch.channels_last)
        reference = StableDiffusionInpaintPipeline(
            vae=pipeline.vae, text_encoder=pipeline.text_encoder, tokenizer=pipeline.tokenizer, unet=reference_unet,
            scheduler=pipeline.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )  # fmt: skip
        reference.set_progress_bar_config(disable=True)
        mask_image = Image.fromarray((mask * 255).astype(np.uint8))

        def reference_edit(n_steps: int):
            return reference(prompt="a photo of a model wearing a dress", image=frame, mask_image=mask_image,
                             height=512, width=384, num_inference_steps=n_steps, output_type="np",
                             generator=torch.Generator().manual_seed(0)).images  # fmt: skip

        long_r = statistics.median(timed(lambda: reference_edit(steps), per_step_runs, 1))
        short_r = statistics.median(timed(lambda: reference_edit(short_steps), per_step_runs, 1))
        reference_step = (long_r - short_r) / (steps - short_steps)
        record("per_step_ms_diffusers_sd2_inpaint", round(reference_step * 1000, 2), args.out)
        record("per_step_ratio_ours_over_diffusers", round(ours_step / reference_step, 3), args.out)
        del reference, reference_unet

    pipeline.use_scheduler("dpm++")
    latency(f"edit_dpm{dpm_steps}", dpm_steps)
    pipeline.use_scheduler("ddim")

    if "compile" not in args.skip and device == "cuda":
        try:
            compiled_section(pipeline, edit, latency, steps, dpm_steps, args.out, args.compile_mode)
        except Exception as error:  # a benchmark section that fails is reported, the others still run
            record("compile_error", f"{type(error).__name__}: {error}"[:500], args.out)

    if "lowvram" not in args.skip:
        try:
            low_vram_section(pipeline, bundle, dtype, steps, args)
        except Exception as error:
            record("low_vram_error", f"{type(error).__name__}: {error}"[:500], args.out)

    print("\n| figure | value |\n|---|---|")
    for key, value in RESULTS.items():
        print(f"| {key} | {value} |")


def compiled_section(pipeline, edit, latency, steps: int, dpm_steps: int, out, mode: str) -> None:
    eager_unet = pipeline.unet
    pipeline.unet = torch.compile(eager_unet, fullgraph=True, mode=None if mode == "default" else mode)
    start = time.perf_counter()
    edit(steps)
    sync()
    record("compile_warmup_s (first compiled edit)", round(time.perf_counter() - start, 1), out)
    latency(f"edit_ddim{steps}_compiled_{mode}", steps)
    pipeline.use_scheduler("dpm++")
    latency(f"edit_dpm{dpm_steps}_compiled_{mode}", dpm_steps)
    pipeline.use_scheduler("ddim")
    pipeline.unet = eager_unet


def low_vram_section(pipeline, bundle, dtype, steps: int, args) -> None:
    pipeline.to("cpu")  # frees the default pipeline's GPU memory so the peak below is the offloaded one's
    del pipeline
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    low = FashionRAGPipeline.from_sources(ModelSources(str(bundle)), "cpu", dtype)
    low.set_progress_bar_config(disable=True)
    low.enable_low_vram()
    measure_latency(f"edit_ddim{steps}_low_vram", edit_function(low), steps, max(3, args.runs // 3), 1, args.out)


def _tiny_nine_channel_unet():
    from diffusers import UNet2DConditionModel

    from fashion_rag.tiny_bundle import seeded_init, tiny_unet_config

    with seeded_init(9):
        return UNet2DConditionModel.from_config(tiny_unet_config(9))


if __name__ == "__main__":
    main()
