"""GPU edit benchmark with full-size random weights (no downloads): the app's default path, its checks, start-up.

    python benchmarks/bench_gpu_edit.py [--runs 10] [--budget-s 420] [--out FILE]   # on a CUDA machine
    python benchmarks/bench_gpu_edit.py --quick                                    # tiny bundle on the CPU

Builds the full-size bundle from weights/configs/ (random weights cost the same compute and memory as the
real ones) and measures, at 512x384 in fp16, what issue 21 asks for, writing it as it goes to
benchmarks/results/gpu-<card>-<date>.json (`--out` elsewhere):

- `graph_capture_s`: the CUDA graphs of the UNet step, one per CFG batch 2/4/6/8 (what the app does at start-up);
- `graph_vs_eager`: the same edit replayed and eager (max abs difference of the [0, 1] frames, tolerance
  `GRAPH_TOLERANCE`), and each batch's UNet step (max abs difference);
- `concurrent`: 8 threads replaying the graphs at once, each output against its own eager output;
- `ddim50_p50_s` (the app's default: graphs), `eager_ddim50_p50_s`, `dpm25_p50_s`, `ddim50_4images_p50_s`:
  full edits (two garments through CLIP ViT-H/14 and the adapter, prompts, VAE encode, loop, VAE decode);
- `per_step_ratio_vs_diffusers`: (t(50) - t(10)) / 40 of the default path over the same for diffusers'
  StableDiffusionInpaintPipeline (eager, 9-channel UNet, same VAE, text encoder, scheduler), same run;
- `peak_gb_app`: torch.cuda.max_memory_allocated from the start through the pipeline, its graphs, the
  retrieval encoder (open_clip ViT-L-14, fp16) and the clothes parser (SegFormer-B2), with a search, a parse
  and edits of 1 and 4 images; `peak_gb_lowvram`: the same peak for `--low-vram` alone, after freeing all that;
- `compiled_ddim50_p50_s` and `compile_warmup_s` (`--compile`, empty inductor cache), then
  `compiled_first_edit_s`: a fresh process reusing the cache, start to first finished edit;
- `first_edit_s`: a fresh process, start to the first finished edit on the default path (weights on local
  disk, converted copies cached); `app_ready_s`: `python app.py` start to HTTP 200 (needs gradio and the
  app's other packages on the machine; else null with the reason).
Sections run in that order and stop when `--budget-s` would be passed; a failing section records its error.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import build_full_size_bundle, full_size_unet, machine_description  # noqa: E402

from fashion_rag.generation.graphs import CFG_BATCHES  # noqa: E402
from fashion_rag.generation.pipeline import FashionRAGPipeline  # noqa: E402
from fashion_rag.weights import ModelSources  # noqa: E402

GRAPH_TOLERANCE = 2e-3  # on [0, 1] frames: half an 8-bit level, fp16 kernels chosen per capture may reorder sums
RESULTS: dict[str, object] = {}
STARTED = time.perf_counter()
FIRST_EDIT_CHILD = """
import sys, time
spawned = float(sys.argv[1]); sys.path.insert(0, {repo!r})
import torch
from fashion_rag.generation.pipeline import FashionRAGPipeline
from fashion_rag.weights import ModelSources
sys.path.insert(0, {bench!r})
from bench_gpu_edit import edit_function
pipeline = FashionRAGPipeline.from_sources(ModelSources({bundle!r}), "cuda")
pipeline.set_progress_bar_config(disable=True)
pipeline.enable_fast_path(compile_unet={compile!r})
warm = pipeline.warm_up().warmup_s
edit_function(pipeline)(50)
torch.cuda.synchronize()
print("FIRST_EDIT", time.time() - spawned, warm)
"""


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
        return pipeline(frame, mask, "upper_body", garment_images=garments, pose_map=pose, num_images=num_images,
                        num_inference_steps=n_steps, generator=torch.Generator().manual_seed(0))  # fmt: skip

    return edit


def per_step_s(edit, steps: int, short: int, runs: int) -> float:
    """(t(steps) - t(short)) / (steps - short): one denoising step, the rest of the edit cancelled out."""
    long_t = statistics.median(timed(lambda: edit(steps), runs, 1))
    short_t = statistics.median(timed(lambda: edit(short), runs, 1))
    return (long_t - short_t) / (steps - short)


def section(name: str, need_s: float, args, fn) -> None:
    """Run `fn()` unless it would pass the budget; record its error and go on if it fails."""
    left = args.budget_s - (time.perf_counter() - STARTED)
    if left < need_s:
        record(f"{name}_skipped", f"budget: {left:.0f} s left, needs ~{need_s:.0f} s", args.out)
        return
    start = time.perf_counter()
    try:
        fn()
    except Exception as error:  # one failing section is reported; the others still run
        record(f"{name}_error", f"{type(error).__name__}: {error}"[:800], args.out)
    print(f"-- {name}: {time.perf_counter() - start:.1f} s", flush=True)


# --------------------------------------------------------------------------------------------------
# Sections


def check_graphs(pipeline, steps: int, out: Path) -> None:
    """The replayed edit against the eager one, and each batch's UNet step against the eager UNet."""
    runner, edit = pipeline.unet_runner, edit_function(pipeline)
    replayed = edit(steps)
    pipeline.unet_runner = None
    eager = edit(steps)
    pipeline.unet_runner = runner
    frames = float(np.abs(replayed - eager).max())
    unet, config = pipeline.unet, pipeline.unet.config
    per_batch = {}
    for batch in CFG_BATCHES:
        sample = torch.randn((batch, config.in_channels, 64, 48), device="cuda", dtype=unet.dtype)
        text = torch.randn((batch, 77, config.cross_attention_dim), device="cuda", dtype=unet.dtype)
        t = torch.tensor(321, device="cuda")
        with torch.no_grad():
            got = runner(sample, t, encoder_hidden_states=text)[0]
            want = unet(sample, t, encoder_hidden_states=text, return_dict=False)[0]
        per_batch[batch] = float((got - want).abs().max())
    record("graph_vs_eager", {"frames_max_abs_diff": frames, "tolerance": GRAPH_TOLERANCE,
                              "unet_step_max_abs_diff_by_batch": per_batch, "ok": frames <= GRAPH_TOLERANCE}, out)  # fmt: skip


def check_concurrent(pipeline, out: Path) -> None:
    """8 threads replay batch-2 and batch-4 graphs at once; each must get its own inputs' eager output."""
    runner, unet, config = pipeline.unet_runner, pipeline.unet, pipeline.unet.config
    calls = []
    for i in range(8):
        batch = 4 if i % 2 else 2
        g = torch.Generator(device="cuda").manual_seed(100 + i)
        sample = torch.randn((batch, config.in_channels, 64, 48), device="cuda", generator=g).half()
        text = torch.randn((batch, 77, config.cross_attention_dim), device="cuda", generator=g).half()
        calls.append((sample, torch.tensor(50 * i + 1, device="cuda"), text))
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
        torch.cuda.synchronize()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    diffs = [float((r - e).abs().max()) for r, e in zip(results, expected, strict=True)]
    eager = [float((e - unet(s, t, encoder_hidden_states=x, return_dict=False)[0]).abs().max())
             for e, (s, t, x) in zip(expected, calls, strict=True)]  # fmt: skip
    record("concurrent", {"threads": len(calls), "max_abs_diff_vs_serial": max(diffs),
                          "max_abs_diff_vs_eager": max(eager), "ok": max(diffs) == 0.0}, out)  # fmt: skip


def app_memory(pipeline, out: Path) -> None:
    """The other models the app holds on the GPU, used once each, and edits of 1 and 4 images."""
    import open_clip
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    from fashion_rag.catalog.encoder import RetrievalEncoder
    from fashion_rag.person.parser import ClothesParser

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-L-14", pretrained=None, device="cuda")
    encoder = RetrievalEncoder(model, preprocess, open_clip.get_tokenizer("ViT-L-14"), "full-size", device="cuda")
    config = SegformerConfig.from_pretrained(str(REPO / "weights/configs/clothes-parser"))
    parser = ClothesParser(SegformerForSemanticSegmentation(config), SegformerImageProcessor(), torch.device("cuda"))
    frame = inputs()[0]
    encoder.encode_texts(["navy blazer with gold buttons"])
    encoder.encode_images([frame] * 32)
    parser(frame)
    for images in (1, 4):
        edit_function(pipeline, images)(50)
    sync()
    record("peak_gb_app", round(torch.cuda.max_memory_allocated() / 2**30, 2), out)
    record("app_memory", {"allocated_gb_after": round(torch.cuda.memory_allocated() / 2**30, 2),
                          "reserved_gb_peak": round(torch.cuda.max_memory_reserved() / 2**30, 2),
                          "includes": "pipeline + 4 CUDA graphs + retrieval encoder fp16 + parser + edits of 1 and 4 images"},
           out)  # fmt: skip
    del encoder, parser, model


def diffusers_step(pipeline, edit, steps: int, short: int, runs: int, out: Path) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    ours = per_step_s(edit, steps, short, runs)
    runner, pipeline.unet_runner = pipeline.unet_runner, None
    ours_eager = per_step_s(edit, steps, short, runs)
    pipeline.unet_runner = runner
    unet = full_size_unet(9, "cuda").to(torch.float16)
    reference = StableDiffusionInpaintPipeline(
        vae=pipeline.vae, text_encoder=pipeline.text_encoder, tokenizer=pipeline.tokenizer, unet=unet,
        scheduler=pipeline.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    reference.set_progress_bar_config(disable=True)
    frame, mask, _, _ = inputs()
    mask_image = Image.fromarray((mask * 255).astype(np.uint8))

    def reference_edit(n: int):
        return reference(prompt="a photo of a model wearing a dress", image=frame, mask_image=mask_image, height=512,
                         width=384, num_inference_steps=n, output_type="np",
                         generator=torch.Generator().manual_seed(0)).images  # fmt: skip

    theirs = per_step_s(reference_edit, steps, short, runs)
    record("per_step_ms", {"ours_default": round(ours * 1e3, 2), "ours_eager": round(ours_eager * 1e3, 2),
                           "diffusers_eager": round(theirs * 1e3, 2)}, out)  # fmt: skip
    record("per_step_ratio_vs_diffusers", round(ours / theirs, 3), out)
    record("per_step_ratio_eager_vs_diffusers", round(ours_eager / theirs, 3), out)


def compiled(pipeline, steps: int, runs: int, out: Path) -> None:
    eager_unet, runner = pipeline.unet, pipeline.unet_runner
    pipeline.unet_runner = None
    path = pipeline.enable_fast_path(compile_unet=True)
    path = pipeline.warm_up()
    record("compile_warmup_s", round(path.warmup_s, 1), out)
    record("compile_path", path.describe(), out)
    edit = edit_function(pipeline)
    record("compiled_ddim50_p50_s", p50(timed(lambda: edit(steps), runs, 2)), out)
    pipeline.use_scheduler("dpm++")
    record("compiled_dpm25_p50_s", p50(timed(lambda: edit(25), runs, 1)), out)
    pipeline.use_scheduler("ddim")
    pipeline.unet, pipeline.unet_runner = eager_unet, runner


def first_edit(bundle: Path, compile_unet: bool) -> tuple[float, float]:
    """(seconds from spawning a fresh process to its first finished DDIM-50 edit, its warm-up seconds)."""
    code = FIRST_EDIT_CHILD.format(repo=str(REPO), bench=str(REPO / "benchmarks"), bundle=str(bundle),
                                   compile=compile_unet)  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, repr(time.time())], capture_output=True, text=True,
                            timeout=400)  # fmt: skip
    line = next((x for x in result.stdout.splitlines() if x.startswith("FIRST_EDIT")), None)
    if line is None:
        raise RuntimeError(f"the child failed: {result.stderr[-1500:]}")
    _, total, warm = line.split()
    return round(float(total), 2), round(float(warm), 2)


def low_vram(bundle: Path, steps: int, out: Path) -> None:
    """`--low-vram` as the editor does it: loaded into CPU memory in fp16, offloaded to the GPU per component."""
    torch.cuda.reset_peak_memory_stats()
    low = FashionRAGPipeline.from_sources(ModelSources(str(bundle)), "cpu", torch.float16)
    low.set_progress_bar_config(disable=True)
    low.enable_low_vram(torch.device("cuda"))
    times = timed(lambda: edit_function(low)(steps), 3, 1)
    record("lowvram_ddim50_p50_s", p50(times), out)
    record("peak_gb_lowvram", round(torch.cuda.max_memory_allocated() / 2**30, 2), out)


def app_ready(bundle: Path, out: Path) -> None:
    from bench_app_start import free_port, seconds_to_answer

    probe = subprocess.run([sys.executable, "-c", "import gradio, faiss, mediapipe, bm25s"], capture_output=True,
                           text=True)  # fmt: skip
    if probe.returncode != 0:
        record("app_ready_s", None, out)
        record("app_ready_note", "not measured here: " + probe.stderr.strip().splitlines()[-1][:300], out)
        return
    port, work = free_port(), Path(tempfile.mkdtemp(prefix="fashion-rag-app-"))
    command = [sys.executable, "app.py", "--models", str(bundle), "--port", str(port), "--index", str(work / "index"),
               "--output-dir", str(work / "outputs")]  # fmt: skip
    record("app_ready_s", round(seconds_to_answer(command, port, 120, {**__import__("os").environ}), 2), out)


# --------------------------------------------------------------------------------------------------


def card_slug() -> str:
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-") or "gpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting sections past this")
    parser.add_argument("--bundle", type=Path, default=None, help="reuse (or write) a full-size bundle folder")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/gpu-<card>-<date>.json")
    parser.add_argument("--quick", action="store_true", help="tiny bundle, few steps, CPU: checks the script")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip: compile lowvram reference first app")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.quick
    today = datetime.date.today().isoformat()
    args.out = args.out or REPO / "benchmarks" / "results" / f"gpu-{card_slug()}-{today}.json"
    steps = 50 if not args.quick else 3
    if args.quick:
        record(
            "quick", "tiny bundle on the CPU, 3 steps where the names say 50 or 25: checks the script only", args.out
        )
    record("date", today, args.out)
    record("card", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", args.out)
    record("torch", torch.__version__, args.out)
    record("machine", machine_description(), args.out)
    import diffusers
    import transformers

    record("versions", {"diffusers": diffusers.__version__, "transformers": transformers.__version__}, args.out)

    work = Path(tempfile.mkdtemp(prefix="fashion-rag-bench-"))
    start = time.perf_counter()
    if args.quick:
        from fashion_rag.tiny_bundle import make_tiny_bundle

        bundle = make_tiny_bundle(work / "tiny")
    elif args.bundle is not None and (args.bundle / "bundle.json").is_file():
        bundle = args.bundle
    else:
        bundle = build_full_size_bundle(args.bundle or work / "full", device="cuda", dtype=torch.float16)
    record("bundle_build_s", round(time.perf_counter() - start, 1), args.out)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    device, dtype = ("cuda", torch.float16) if cuda else ("cpu", torch.float32)
    pipeline = FashionRAGPipeline.from_sources(ModelSources(str(bundle)), device, dtype)  # converts the .pth once
    pipeline.set_progress_bar_config(disable=True)
    record("load_s (includes .pth -> safetensors)", round(time.perf_counter() - start, 1), args.out)
    path = pipeline.enable_fast_path()
    path = pipeline.warm_up()
    record("unet_path", path.describe(), args.out)
    record("graph_capture_s", round(path.warmup_s, 2) if path.warmup_s is not None else None, args.out)
    if pipeline.unet_runner is not None:
        record("graph_capture_s_by_batch", {b: round(s, 3) for b, s in pipeline.unet_runner.capture_s.items()},
               args.out)  # fmt: skip
    run_sections(pipeline, bundle, steps, cuda, args)
    print("\n| figure | value |\n|---|---|")
    for key, value in RESULTS.items():
        print(f"| {key} | {value} |")


def run_sections(pipeline, bundle: Path, steps: int, cuda: bool, args) -> None:
    out, runs, edit = args.out, args.runs, edit_function(pipeline)
    if cuda:
        section("graph_vs_eager", 15, args, lambda: check_graphs(pipeline, steps, out))
        section("concurrent", 5, args, lambda: check_concurrent(pipeline, out))

    def latencies() -> None:
        record("ddim50_p50_s", p50(timed(lambda: edit(steps), runs, 2)), out)
        runner, pipeline.unet_runner = pipeline.unet_runner, None
        record("eager_ddim50_p50_s", p50(timed(lambda: edit(steps), max(3, runs // 2), 1)), out)
        pipeline.unet_runner = runner
        pipeline.use_scheduler("dpm++")
        record("dpm25_p50_s", p50(timed(lambda: edit(25 if cuda else 3), runs, 1)), out)
        pipeline.use_scheduler("ddim")
        record("ddim50_4images_p50_s", p50(timed(lambda: edit_function(pipeline, 4)(steps), 3, 1)), out)

    section("latency", 30, args, latencies)
    if not cuda:
        return
    section("app_memory", 30, args, lambda: app_memory(pipeline, out))
    if "reference" not in args.skip:
        section("reference", 30, args, lambda: diffusers_step(pipeline, edit, steps, 10, 3, out))
    if "compile" not in args.skip:
        section("compile", 110, args, lambda: compiled(pipeline, steps, runs, out))
    if "first" not in args.skip:
        section("first_edit", 45, args, lambda: record("first_edit_s", first_edit(bundle, False)[0], out))
        record("first_edit_note", "fresh process: imports, pipeline load, graph capture, one DDIM-50 edit", out)
    if "compile" not in args.skip and "first" not in args.skip:

        def compiled_first() -> None:
            total, warm = first_edit(bundle, True)
            record("compiled_first_edit_s", total, out)
            record("compile_warmup_cached_s", warm, out)

        section("compiled_first_edit", 60, args, compiled_first)
    pipeline.unet_runner = None  # frees the graphs' memory pools
    pipeline.to("cpu")
    torch._dynamo.reset()  # and the compiled module's
    gc.collect()
    torch.cuda.empty_cache()
    if "lowvram" not in args.skip:
        section("lowvram", 40, args, lambda: low_vram(bundle, steps, out))
    if "app" not in args.skip:
        section("app_ready", 20, args, lambda: app_ready(bundle, out))


if __name__ == "__main__":
    main()
