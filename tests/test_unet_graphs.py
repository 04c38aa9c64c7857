"""The CUDA-graph runner's bookkeeping, on the CPU with a stand-in for the capture (generation/graphs.py).

A stand-in capture behaves as a captured graph does: replay() reads the static input buffers when it runs and
overwrites the static output. The real capture (`capture_cuda_graph`) runs in the device check
(benchmarks/bench_gpu_edit.py), which compares replayed and eager pictures on a GPU.
"""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_rag.generation.graphs import CFG_BATCHES, UNetGraphRunner, configure_compile_cache
from fashion_rag.generation.pipeline import FashionRAGPipeline

HW = (64, 48)  # latents of the 512x384 frame
TOKENS, WIDTH = 77, 8


class FakeUNet(torch.nn.Module):
    """A UNet-shaped function whose every output element depends on the sample, the timestep and the text."""

    config = SimpleNamespace(in_channels=27, cross_attention_dim=WIDTH)

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.calls: list[int] = []

    device = property(lambda self: self.scale.device)
    dtype = property(lambda self: self.scale.dtype)

    def forward(self, sample, timestep, encoder_hidden_states, return_dict=False):
        self.calls.append(sample.shape[0])
        text = encoder_hidden_states.mean(dim=(1, 2))[:, None, None, None]
        step = timestep.float().reshape(-1)[:, None, None, None] / 1000  # one timestep, or one per sample
        return (sample[:, :4] * self.scale + step + text,)


class StandInCapture:
    """capture(unet, sample, t, text) -> (replay, output), counting replays and how many ran at once."""

    def __init__(self, replay_s: float = 0.0) -> None:
        self.replay_s = replay_s  # a window between the launch and reading the inputs, as a GPU has
        self.captured: list[int] = []
        self.replays = 0
        self.running = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def __call__(self, unet, sample, timestep, text):
        self.captured.append(sample.shape[0])
        output = unet(sample, timestep, text)[0].clone()

        def replay() -> None:
            with self._count:
                self.replays += 1
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            # A GPU runs a replayed graph after its launch: the static inputs are read at the end of the window,
            # so a thread that copies its inputs in meanwhile is what this replay computes with.
            time.sleep(self.replay_s)
            output.copy_(unet(sample, timestep, text)[0])
            with self._count:
                self.running -= 1

        return replay, output


def inputs(batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn((batch, 27, *HW), generator=generator)
    text = torch.randn((batch, TOKENS, WIDTH), generator=generator)
    return sample, torch.tensor(100 + seed), text


def test_one_graph_per_cfg_batch_captured_largest_first():
    stand_in = StandInCapture()
    runner = UNetGraphRunner(FakeUNet(), capture=stand_in)
    runner.capture(CFG_BATCHES, TOKENS, HW)
    assert stand_in.captured == [8, 6, 4, 2]  # largest first
    assert sorted(runner.graphs) == [2, 4, 6, 8] and set(runner.capture_s) == {2, 4, 6, 8}
    assert runner.graphs[8].sample.shape == (8, 27, *HW) and runner.graphs[8].text.shape == (8, TOKENS, WIDTH)


def test_a_replay_gives_the_eager_output_in_a_tensor_of_its_own():
    unet, stand_in = FakeUNet(), StandInCapture()
    runner = UNetGraphRunner(unet, capture=stand_in)
    runner.capture((2,), TOKENS, HW)
    sample, timestep, text = inputs(2, seed=1)
    (first,) = runner(sample, timestep, encoder_hidden_states=text)
    assert stand_in.replays == 1
    torch.testing.assert_close(first, unet(sample, timestep, text)[0], rtol=0, atol=0)
    kept = first.clone()
    runner(*inputs(2, seed=2)[:2], encoder_hidden_states=inputs(2, seed=2)[2])  # the next replay
    torch.testing.assert_close(first, kept, rtol=0, atol=0)  # did not overwrite the first caller's output
    assert first.data_ptr() != runner.graphs[2].output.data_ptr()


@pytest.mark.parametrize(
    "change", ["batch without a graph", "other frame size", "other dtype", "float timestep", "timestep per sample"]
)
def test_calls_no_graph_fits_run_the_eager_unet(change):
    unet, stand_in = FakeUNet(), StandInCapture()
    runner = UNetGraphRunner(unet, capture=stand_in)
    runner.capture((2,), TOKENS, HW)
    sample, timestep, text = inputs(3 if change == "batch without a graph" else 2, seed=3)
    if change == "other frame size":
        sample = sample[..., :32]
    if change == "other dtype":
        sample, text = sample.double(), text.double()
    if change == "float timestep":
        timestep = timestep.float()
    if change == "timestep per sample":
        timestep = timestep.repeat(sample.shape[0])
    (output,) = runner(sample, timestep, encoder_hidden_states=text)
    assert stand_in.replays == 0
    torch.testing.assert_close(output, unet(sample, timestep, text)[0], rtol=0, atol=0)


def test_concurrent_callers_are_serialised_per_graph_and_each_gets_its_own_output():
    """Eight threads on one graph, with a window inside each replay: with the graph's lock no two replays
    overlap and every caller gets the eager output of its own inputs (without it, inputs get mixed)."""
    unet, stand_in = FakeUNet(), StandInCapture(replay_s=0.02)
    runner = UNetGraphRunner(unet, capture=stand_in)
    runner.capture((2, 4), TOKENS, HW)
    calls = [inputs(2 if i % 4 else 4, seed=10 + i) for i in range(8)]
    expected = [unet(s, t, x)[0] for s, t, x in calls]
    results: list[torch.Tensor | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def call(i: int) -> None:
        sample, timestep, text = calls[i]
        start.wait()
        results[i] = runner(sample, timestep, encoder_hidden_states=text)[0]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert stand_in.replays == len(calls)
    assert stand_in.most_at_once <= 2  # one replay per graph at a time; the two graphs may overlap
    for got, want in zip(results, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_without_the_lock_the_stand_in_shows_the_race():
    """The test above can fail: the same threads through a runner whose lock does nothing mix their inputs."""

    class NoLock:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    # A replay ten times longer than the locked test's: six threads released together overlap in it even on a
    # loaded machine (at 0.02 s a busy 2-core box once ran them one after another, and nothing mixed).
    unet, stand_in = FakeUNet(), StandInCapture(replay_s=0.2)
    runner = UNetGraphRunner(unet, capture=stand_in)
    runner.capture((2,), TOKENS, HW)
    runner.graphs[2].lock = NoLock()
    calls = [inputs(2, seed=30 + i) for i in range(6)]
    results: list[torch.Tensor | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def call(i: int) -> None:
        start.wait()
        results[i] = runner(calls[i][0], calls[i][1], encoder_hidden_states=calls[i][2])[0]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    wrong = sum(not torch.equal(r, unet(*c)[0]) for r, c in zip(results, calls, strict=True))
    assert stand_in.most_at_once > 1 and wrong > 0


# --------------------------------------------------------------------------------------------------
# The pipeline's paths


@pytest.fixture(scope="module")
def pipeline(tiny_sources) -> FashionRAGPipeline:
    return FashionRAGPipeline.from_sources(tiny_sources, "cpu")


def edit(pipeline, steps: int = 3):
    rng = np.random.default_rng(5)
    frame = Image.fromarray(rng.integers(0, 256, (512, 384, 3), dtype=np.uint8))
    mask = np.zeros((512, 384), np.float32)
    mask[80:420, 60:320] = 1
    return pipeline(
        frame,
        mask,
        "dresses",
        pose_map=rng.random((18, 512, 384), dtype=np.float32),
        description="a red dress",
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(0),
    )


def test_the_pipeline_replays_every_step_from_the_graph_and_gives_the_eager_picture(pipeline, one_torch_thread):
    eager = edit(pipeline)
    stand_in = StandInCapture()
    pipeline.unet_runner = UNetGraphRunner(pipeline.unet, capture=stand_in)
    try:
        path = pipeline.warm_up()
        assert stand_in.captured == [8, 6, 4, 2] and path.warmup_s is not None
        replayed = edit(pipeline)
    finally:
        pipeline.unet_runner = None
    assert stand_in.replays == 3  # every denoising step of the batch-2 (1 image with guidance) call
    np.testing.assert_array_equal(replayed, eager)


def test_on_the_cpu_the_fast_path_stays_eager_and_contiguous(pipeline):
    path = pipeline.enable_fast_path()
    assert path.mode == "eager" and "CUDA" in path.note and pipeline.unet_runner is None
    conv = next(m.weight for m in pipeline.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert not conv.is_contiguous(memory_format=torch.channels_last) or conv.shape[-1] == 1
    assert pipeline.warm_up().warmup_s is None  # nothing to warm up


def test_compile_uses_the_project_cache_set_before_compiling(pipeline, tmp_path, monkeypatch):
    seen = {}
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "TORCHINDUCTOR_FX_GRAPH_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("fashion_rag.generation.graphs.COMPILE_CACHE_DIR", tmp_path / "inductor")
    monkeypatch.setattr(
        "fashion_rag.generation.pipeline.configure_compile_cache",
        lambda: configure_compile_cache(tmp_path / "inductor"),
    )

    def fake_compile(module, **options):
        seen.update(options, cache=os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    eager, previous = pipeline.unet, pipeline.speed_path
    try:
        path = pipeline.enable_fast_path(compile_unet=True)
    finally:
        pipeline.unet, pipeline.speed_path = eager, previous
    assert seen["cache"] == str(tmp_path / "inductor") and (tmp_path / "inductor").is_dir()
    assert os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] == "1"
    assert path.mode == "compiled" and str(tmp_path / "inductor") in path.describe()


def test_a_space_never_captures_graphs_and_low_vram_stays_eager(tiny_settings, tmp_path, monkeypatch):
    """ZeroGPU's main process has no CUDA: on a Space the editor asks for no CUDA graphs; --low-vram asks for no
    fast path at all and offloads to the --device it was given."""
    from dataclasses import replace

    from fashion_rag.editor import Editor

    asked = []
    monkeypatch.setattr(FashionRAGPipeline, "enable_fast_path", lambda self, **kw: asked.append(("fast", kw)))
    monkeypatch.setattr(FashionRAGPipeline, "enable_low_vram", lambda self, device=None: asked.append(("low", device)))
    space = Editor.from_settings(replace(tiny_settings, on_space=True, output_dir=tmp_path / "a"))
    space._load_pipeline(warm_up=False)
    low_runtime = replace(tiny_settings.runtime, low_vram=True)
    low = Editor.from_settings(replace(tiny_settings, runtime=low_runtime, output_dir=tmp_path / "b"))
    low._load_pipeline(warm_up=False)
    assert asked == [("fast", {"compile_unet": False, "cuda_graphs": False}), ("low", torch.device("cpu"))]
