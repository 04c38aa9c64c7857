"""What benchmarks/bench_gpu_edit.py measures and checks, section by section: timing helpers, the graph checks
(replayed against eager, concurrent replays), the whole app's GPU memory and the per-step ratio against
diffusers. Each works on any device, so `bench_gpu_edit.py --quick` runs them on the CPU with the tiny bundle
(a stand-in runner there: no CUDA graphs on the CPU) to check the script before a device run.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashion_rag.generation.graphs import CFG_BATCHES
from fashion_rag.generation.pipeline import FashionRAGPipeline

REPO = Path(__file__).resolve().parent.parent
GRAPH_TOLERANCE = 2e-3  # on [0, 1] frames: half an 8-bit level, fp16 kernels chosen per capture may reorder sums
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


def p50(times: list[float]) -> float:
    return round(float(np.percentile(np.asarray(times), 50)), 4)


def record(name: str, value: object, out: Path) -> None:
    RESULTS[name] = value
    print(f"{name}: {value}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(RESULTS, indent=2, default=str) + "\n")


def inputs():
    rng = np.random.default_rng(0)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.float32)
    mask[100:420, 70:310] = 1
    pose = rng.random((18, 512, 384), dtype=np.float32)
    garments = [Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8)) for _ in range(2)]
    return frame, mask, pose, garments


def edit_function(pipeline: FashionRAGPipeline, num_images: int = 1):
    """edit(n_steps): one full edit of the benchmark's inputs (two garments, pose map, fixed seed)."""
    frame, mask, pose, garments = inputs()

    def edit(n_steps: int):
        return pipeline(
            frame,
            mask,
            "upper_body",
            garment_images=garments,
            pose_map=pose,
            num_images=num_images,
            num_inference_steps=n_steps,
            generator=torch.Generator().manual_seed(0),
        )

    return edit


def per_step_s(edit, steps: int, short: int, runs: int) -> float:
    """(t(steps) - t(short)) / (steps - short): one denoising step, the rest of the edit cancelled out."""
    long_t = statistics.median(timed(lambda: edit(steps), runs, 1))
    short_t = statistics.median(timed(lambda: edit(short), runs, 1))
    return (long_t - short_t) / (steps - short)


def check_graphs(pipeline, steps: int, out: Path) -> None:
    """The replayed edit against the eager one, and each batch's UNet step against the eager UNet."""
    runner, edit = pipeline.unet_runner, edit_function(pipeline)
    replayed = edit(steps)
    pipeline.unet_runner = None
    eager = edit(steps)
    pipeline.unet_runner = runner
    frames = float(np.abs(replayed - eager).max())
    unet, config, device = pipeline.unet, pipeline.unet.config, pipeline.unet.device
    per_batch = {}
    for batch in CFG_BATCHES:
        sample = torch.randn((batch, config.in_channels, 64, 48), device=device).to(unet.dtype)
        text = torch.randn((batch, 77, config.cross_attention_dim), device=device).to(unet.dtype)
        t = torch.tensor(321, device=device)
        with torch.no_grad():
            got = runner(sample, t, encoder_hidden_states=text)[0]
            want = unet(sample, t, encoder_hidden_states=text, return_dict=False)[0]
        per_batch[batch] = float((got - want).abs().max())
    record(
        "graph_vs_eager",
        {
            "frames_max_abs_diff": frames,
            "tolerance": GRAPH_TOLERANCE,
            "unet_step_max_abs_diff_by_batch": per_batch,
            "ok": frames <= GRAPH_TOLERANCE,
        },
        out,
    )


def check_concurrent(pipeline, out: Path) -> None:
    """8 threads replay batch-2 and batch-4 graphs at once; each must get its own inputs' eager output."""
    runner, unet, config, device = pipeline.unet_runner, pipeline.unet, pipeline.unet.config, pipeline.unet.device
    calls = []
    for i in range(8):
        batch = 4 if i % 2 else 2
        g = torch.Generator(device=device).manual_seed(100 + i)
        sample = torch.randn((batch, config.in_channels, 64, 48), device=device, generator=g).to(unet.dtype)
        text = torch.randn((batch, 77, config.cross_attention_dim), device=device, generator=g).to(unet.dtype)
        calls.append((sample, torch.tensor(50 * i + 1, device=device), text))
    with torch.no_grad():
        expected = [runner(s, t, encoder_hidden_states=x)[0] for s, t, x in calls]  # one at a time
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def call(i: int) -> None:
        sample, t, text = calls[i]
        barrier.wait()
        with torch.no_grad():
            for _ in range(5):
                results[i] = runner(sample, t, encoder_hidden_states=text)[0]
        sync()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    diffs = [float((r - e).abs().max()) for r, e in zip(results, expected, strict=True)]
    eager = [
        float((e - unet(s, t, encoder_hidden_states=x, return_dict=False)[0]).abs().max())
        for e, (s, t, x) in zip(expected, calls, strict=True)
    ]
    record(
        "concurrent",
        {
            "threads": len(calls),
            "max_abs_diff_vs_serial": max(diffs),
            "max_abs_diff_vs_eager": max(eager),
            "ok": max(diffs) == 0.0,
        },
        out,
    )


def app_memory(pipeline, encoder, out: Path) -> None:
    """The other models the app holds on the device (`encoder`: the retrieval encoder), used once each, and
    edits of 1 and 4 images; the peak since the process started (or the last reset)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    from fashion_rag.person.parser import ClothesParser

    device = pipeline.unet.device
    config = SegformerConfig.from_pretrained(str(REPO / "weights/configs/clothes-parser"))
    parser = ClothesParser(SegformerForSemanticSegmentation(config), SegformerImageProcessor(), device)
    frame = inputs()[0]
    encoder.encode_texts(["navy blazer with gold buttons"])
    encoder.encode_images([frame] * 32)
    parser(frame)
    for images in (1, 4):
        edit_function(pipeline, images)(50 if device.type == "cuda" else 2)
    sync()
    if device.type != "cuda":
        record("app_memory", "not measured: no CUDA (the section ran to check the script)", out)
        return
    record("peak_gb_app", round(torch.cuda.max_memory_allocated() / 2**30, 2), out)
    record(
        "app_memory",
        {
            "allocated_gb_after": round(torch.cuda.memory_allocated() / 2**30, 2),
            "reserved_gb_peak": round(torch.cuda.max_memory_reserved() / 2**30, 2),
            "includes": "pipeline + its CUDA graphs + retrieval encoder (fp16) + clothes parser "
            "+ edits of 1 and 4 images",
        },
        out,
    )


def diffusers_step(pipeline, edit, unet, steps: int, short: int, runs: int, out: Path) -> None:
    """Per step, (t(steps) - t(short)) / (steps - short), of our default path, our eager path and diffusers'
    StableDiffusionInpaintPipeline with `unet` (a 9-channel UNet) and our VAE, text encoder and scheduler."""
    from diffusers import StableDiffusionInpaintPipeline

    ours = per_step_s(edit, steps, short, runs)
    runner, pipeline.unet_runner = pipeline.unet_runner, None
    ours_eager = per_step_s(edit, steps, short, runs)
    pipeline.unet_runner = runner
    reference = StableDiffusionInpaintPipeline(
        vae=pipeline.vae,
        text_encoder=pipeline.text_encoder,
        tokenizer=pipeline.tokenizer,
        unet=unet,
        scheduler=pipeline.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    reference.set_progress_bar_config(disable=True)
    frame, mask, _, _ = inputs()
    mask_image = Image.fromarray((mask * 255).astype(np.uint8))

    def reference_edit(n: int):
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

    theirs = per_step_s(reference_edit, steps, short, runs)
    record(
        "per_step_ms",
        {
            "ours_default": round(ours * 1e3, 2),
            "ours_eager": round(ours_eager * 1e3, 2),
            "diffusers_eager": round(theirs * 1e3, 2),
        },
        out,
    )
    record("per_step_ratio_vs_diffusers", round(ours / theirs, 3), out)
    record("per_step_ratio_eager_vs_diffusers", round(ours_eager / theirs, 3), out)


def check_capture_while_busy(pipeline, out: Path) -> None:
    """The app captures in its loading thread while a search may run on the GPU: capture batch 2 again while
    another thread keeps the GPU busy, then compare the new graph's step with the eager UNet's."""
    from fashion_rag.generation.graphs import UNetGraphRunner

    unet, device = pipeline.unet, pipeline.unet.device
    stop = threading.Event()

    def busy() -> None:
        a = torch.randn((1024, 1024), device=device, dtype=unet.dtype)
        while not stop.is_set():
            a = (a @ a).clamp(-1, 1)
        sync()

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        runner = UNetGraphRunner(unet) if device.type == "cuda" else pipeline.unet_runner
        seconds = runner.capture((2,), 77, (64, 48)) if device.type == "cuda" else 0.0
    finally:
        stop.set()
        thread.join(60)
    sample = torch.randn((2, unet.config.in_channels, 64, 48), device=device).to(unet.dtype)
    text = torch.randn((2, 77, unet.config.cross_attention_dim), device=device).to(unet.dtype)
    t = torch.tensor(700, device=device)
    with torch.no_grad():
        diff = float(
            (runner(sample, t, encoder_hidden_states=text)[0] - unet(sample, t, text, return_dict=False)[0]).abs().max()
        )
    record("capture_while_busy", {"capture_s": round(seconds, 3), "max_abs_diff_vs_eager": diff}, out)
