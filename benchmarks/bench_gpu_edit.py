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
- `capture_while_busy`: a capture while another thread keeps the GPU busy (as a search may at start-up);
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
Sections run in the order of `run_sections` and stop when `--budget-s` would be passed; a failing section
records its error and the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_size import build_full_size_bundle, full_size_unet, machine_description  # noqa: E402
from gpu_checks import (  # noqa: E402
    RESULTS,
    app_memory,
    check_capture_while_busy,
    check_concurrent,
    check_graphs,
    diffusers_step,
    edit_function,
    p50,
    record,
    timed,
)

from fashion_rag.generation.graphs import UNetGraphRunner  # noqa: E402
from fashion_rag.generation.pipeline import FashionRAGPipeline  # noqa: E402
from fashion_rag.weights import ModelSources  # noqa: E402

STARTED = time.perf_counter()
FIRST_EDIT_CHILD = """
import sys, time
spawned = float(sys.argv[1]); sys.path.insert(0, {repo!r})
import torch
from fashion_rag.generation.pipeline import FashionRAGPipeline
from fashion_rag.weights import ModelSources
sys.path.insert(0, {bench!r})
from gpu_checks import edit_function
pipeline = FashionRAGPipeline.from_sources(ModelSources({bundle!r}), {device!r})
pipeline.set_progress_bar_config(disable=True)
pipeline.enable_fast_path(compile_unet={compile!r})
warm = pipeline.warm_up().warmup_s
edit_function(pipeline)({steps!r})
torch.cuda.synchronize() if torch.cuda.is_available() else None
print("FIRST_EDIT", time.time() - spawned, warm)
"""


def section(name: str, need_s: float, args, fn) -> None:
    """Run `fn()` unless it would pass the budget; record its error and go on if it fails."""
    left = args.budget_s - (time.perf_counter() - STARTED)
    if name in args.skip:
        return
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


def compiled(pipeline, steps: int, runs: int, out: Path) -> None:
    """`--compile` as the app does it (empty cache on a fresh machine): warm-up at start-up, then edits."""
    eager_unet, runner = pipeline.unet, pipeline.unet_runner
    pipeline.unet_runner = None
    pipeline.enable_fast_path(compile_unet=True)
    path = pipeline.warm_up()
    record("compile_warmup_s", round(path.warmup_s, 1), out)
    record("compile_path", path.describe(), out)
    edit = edit_function(pipeline)
    record("compiled_ddim50_p50_s", p50(timed(lambda: edit(steps), runs, 2)), out)
    pipeline.use_scheduler("dpm++")
    record("compiled_dpm25_p50_s", p50(timed(lambda: edit(25), runs, 1)), out)
    pipeline.use_scheduler("ddim")
    pipeline.unet, pipeline.unet_runner = eager_unet, runner


def first_edit(bundle: Path, device: str, steps: int, compile_unet: bool) -> tuple[float, float | None]:
    """(seconds from spawning a fresh process to its first finished edit, its warm-up seconds or None)."""
    code = FIRST_EDIT_CHILD.format(
        repo=str(REPO),
        bench=str(REPO / "benchmarks"),
        bundle=str(bundle),
        device=device,
        steps=steps,
        compile=compile_unet,
    )
    result = subprocess.run(
        [sys.executable, "-c", code, repr(time.time())], capture_output=True, text=True, timeout=400
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("FIRST_EDIT")), None)
    if line is None:
        raise RuntimeError(f"the child failed: {result.stderr[-1500:]}")
    _, total, warm = line.split()
    return round(float(total), 2), None if warm == "None" else round(float(warm), 2)


def low_vram(bundle: Path, device: str, steps: int, out: Path) -> None:
    """`--low-vram` as the editor does it: loaded into CPU memory in the GPU's precision, offloaded to the GPU
    one component at a time (on the CPU: one image at a time through the VAE only)."""
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    low = FashionRAGPipeline.from_sources(ModelSources(str(bundle)), "cpu", torch.float16 if cuda else torch.float32)
    low.set_progress_bar_config(disable=True)
    low.enable_low_vram(torch.device(device))
    record("lowvram_ddim50_p50_s", p50(timed(lambda: edit_function(low)(steps), 3, 1)), out)
    if cuda:
        record("peak_gb_lowvram", round(torch.cuda.max_memory_allocated() / 2**30, 2), out)


def app_ready(bundle: Path, out: Path, extra: list[str]) -> None:
    """`python app.py` start to HTTP 200, where the app's packages are installed (not on the device image)."""
    from bench_app_start import free_port, seconds_to_answer

    probe = subprocess.run(
        [sys.executable, "-c", "import gradio, faiss, mediapipe, bm25s"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        record("app_ready_s", None, out)
        record("app_ready_note", "not measured here: " + probe.stderr.strip().splitlines()[-1][:300], out)
        return
    port, work = free_port(), Path(tempfile.mkdtemp(prefix="fashion-rag-app-"))
    command = [
        sys.executable,
        "app.py",
        "--models",
        str(bundle),
        "--port",
        str(port),
        "--index",
        str(work / "index"),
        "--output-dir",
        str(work / "outputs"),
        *extra,
    ]
    record("app_ready_s", round(seconds_to_answer(command, port, 120, dict(os.environ)), 2), out)


def stand_in_capture(unet, sample, timestep, text):
    """--quick on the CPU: a 'graph' whose replay runs the eager UNet on the static inputs (checks the script)."""
    output = unet(sample, timestep, encoder_hidden_states=text, return_dict=False)[0].clone()
    return (lambda: output.copy_(unet(sample, timestep, encoder_hidden_states=text, return_dict=False)[0])), output


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
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip, by name (see run_sections)")
    args = parser.parse_args()
    args.cuda = torch.cuda.is_available() and not args.quick
    today = datetime.date.today().isoformat()
    args.out = args.out or REPO / "benchmarks" / "results" / f"gpu-{card_slug()}-{today}.json"
    args.steps = 50 if not args.quick else 3
    if args.quick:
        record(
            "quick",
            "tiny bundle on the CPU, 3 steps where names say 50 or 25, stand-in graphs: a script check",
            args.out,
        )
    record("date", today, args.out)
    record("card", torch.cuda.get_device_name(0) if args.cuda else "cpu", args.out)
    record("torch", torch.__version__, args.out)
    record("machine", machine_description(), args.out)
    import diffusers
    import transformers

    record("versions", {"diffusers": diffusers.__version__, "transformers": transformers.__version__}, args.out)
    bundle = make_bundle(args)
    pipeline = load_pipeline(bundle, args)
    run_sections(pipeline, bundle, args)
    print("\n| figure | value |\n|---|---|")
    for key, value in RESULTS.items():
        print(f"| {key} | {value} |")


def make_bundle(args) -> Path:
    start = time.perf_counter()
    if args.quick:
        from fashion_rag.tiny_bundle import make_tiny_bundle

        bundle = make_tiny_bundle(Path(tempfile.mkdtemp(prefix="fashion-rag-bench-")) / "tiny")
    elif args.bundle is not None and (args.bundle / "bundle.json").is_file():
        bundle = args.bundle
    else:
        work = Path(tempfile.mkdtemp(prefix="fashion-rag-bench-"))
        bundle = build_full_size_bundle(args.bundle or work / "full", device="cuda", dtype=torch.float16)
    record("bundle_build_s", round(time.perf_counter() - start, 1), args.out)
    return bundle


def load_pipeline(bundle: Path, args) -> FashionRAGPipeline:
    """The pipeline as the app loads it on this device, its fast path chosen and warmed up (graphs captured)."""
    if args.cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    device, dtype = ("cuda", torch.float16) if args.cuda else ("cpu", torch.float32)
    pipeline = FashionRAGPipeline.from_sources(ModelSources(str(bundle)), device, dtype)  # converts the .pth once
    pipeline.set_progress_bar_config(disable=True)
    record("load_s (includes .pth -> safetensors)", round(time.perf_counter() - start, 1), args.out)
    pipeline.enable_fast_path()
    if args.quick:
        pipeline.unet_runner = UNetGraphRunner(pipeline.unet, capture=stand_in_capture)
    path = pipeline.warm_up()
    record("unet_path", path.describe(), args.out)
    record("graph_capture_s", round(path.warmup_s, 2) if path.warmup_s is not None else None, args.out)
    if pipeline.unet_runner is not None:
        by_batch = {batch: round(seconds, 3) for batch, seconds in pipeline.unet_runner.capture_s.items()}
        record("graph_capture_s_by_batch", by_batch, args.out)
    return pipeline


def run_sections(pipeline, bundle: Path, args) -> None:
    out, runs, steps, edit = args.out, args.runs, args.steps, edit_function(pipeline)
    device = "cuda" if args.cuda else "cpu"
    section("graph_vs_eager", 15, args, lambda: check_graphs(pipeline, steps, out))
    section("concurrent", 5, args, lambda: check_concurrent(pipeline, out))
    section("capture_while_busy", 5, args, lambda: check_capture_while_busy(pipeline, out))

    def latencies() -> None:
        record("ddim50_p50_s", p50(timed(lambda: edit(steps), runs, 2)), out)
        runner, pipeline.unet_runner = pipeline.unet_runner, None
        record("eager_ddim50_p50_s", p50(timed(lambda: edit(steps), max(3, runs // 2), 1)), out)
        pipeline.unet_runner = runner
        pipeline.use_scheduler("dpm++")
        record("dpm25_p50_s", p50(timed(lambda: edit(25 if args.cuda else 3), runs, 1)), out)
        pipeline.use_scheduler("ddim")
        record("ddim50_4images_p50_s", p50(timed(lambda: edit_function(pipeline, 4)(steps), 3, 1)), out)

    section("latency", 30, args, latencies)
    section("app_memory", 30, args, lambda: app_memory(pipeline, retrieval_encoder(bundle, args), out))
    short = 10 if args.cuda else 1
    section(
        "reference", 30, args, lambda: diffusers_step(pipeline, edit, nine_channel_unet(args), steps, short, 3, out)
    )
    section("first_edit", 45, args, lambda: default_first(bundle, device, steps, out))
    if args.cuda:
        section("compile", 110, args, lambda: compiled(pipeline, steps, runs, out))
        section("compiled_first_edit", 60, args, lambda: compiled_first(bundle, out))
    pipeline.unet_runner = None  # frees the graphs' memory pools
    pipeline.to("cpu")
    torch._dynamo.reset()  # and the compiled module's
    gc.collect()
    if args.cuda:
        torch.cuda.empty_cache()
    section("lowvram", 40, args, lambda: low_vram(bundle, device, steps, out))
    section("app_ready", 20, args, lambda: app_ready(bundle, out, ["--device", device]))


def default_first(bundle: Path, device: str, steps: int, out: Path) -> None:
    record("first_edit_s", first_edit(bundle, device, steps, False)[0], out)
    record("first_edit_note", "fresh process: imports, pipeline load, graph capture, one DDIM-50 edit", out)


def compiled_first(bundle: Path, out: Path) -> None:
    total, warm = first_edit(bundle, "cuda", 50, True)
    record("compiled_first_edit_s", total, out)
    record("compile_warmup_cached_s", warm, out)


def retrieval_encoder(bundle: Path, args):
    """The app's retrieval encoder: open_clip ViT-L-14 (random weights, fp16 on the GPU); the tiny one in --quick."""
    from fashion_rag.catalog.encoder import RetrievalEncoder

    if args.quick:
        return RetrievalEncoder.from_sources(ModelSources(str(bundle)), device="cpu")
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-L-14", pretrained=None, device="cuda")
    return RetrievalEncoder(model, preprocess, open_clip.get_tokenizer("ViT-L-14"), "full-size", device="cuda")


def nine_channel_unet(args):
    """diffusers' stock inpainting UNet (9 input channels) at full size, or the tiny one in --quick."""
    if not args.quick:
        return full_size_unet(9, "cuda").to(torch.float16)
    from diffusers import UNet2DConditionModel

    from fashion_rag.tiny_bundle import seeded_init, tiny_unet_config

    with seeded_init(9):
        return UNet2DConditionModel.from_config(tiny_unet_config(9))


if __name__ == "__main__":
    main()
