"""How the UNet step runs: eager, replayed from CUDA graphs (the default on CUDA), or compiled.

At 64x48 latents the eager fp16 UNet step is bound by kernel launches, not arithmetic: a CUDA graph of the
eager model replays the whole step's kernels in one launch (issue 21 measured 30.9 ms eager against 8.5 ms
replayed on an H200, outputs identical). `UNetGraphRunner` captures one graph per batch the page offers,
with guidance: 1-4 images are CFG batches 2, 4, 6 and 8, at start-up (`FashionRAGPipeline.warm_up`), never
in a request. Each graph reads static input buffers: a call copies its inputs in, replays, and clones the
static output, all under that graph's lock, so Gradio's worker threads can share it; every other batch
(guidance 1, another frame size) runs the eager UNet. The scheduler step, guidance and the VAE stay eager.

The capture and the replay are injectable (`capture=`), so the bookkeeping is tested on the CPU with a
stand-in (tests/test_unet_graphs.py); `capture_cuda_graph` is the real one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

CFG_BATCHES = (2, 4, 6, 8)  # 1-4 images, each with its unconditional and conditional half
CAPTURE_WARMUP_RUNS = 2  # eager runs on a side stream before capture (cuDNN/cuBLAS pick their kernels)
# The project's cache folder (generation/loading.py keeps converted checkpoints beside it).
COMPILE_CACHE_DIR = Path.home() / ".cache" / "fashion_rag" / "inductor"

# capture(unet, sample, timestep, text) -> (replay, output): replay() recomputes `output` from the static inputs.
Capture = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], tuple[Callable[[], None], torch.Tensor]]


@dataclass
class SpeedPath:
    """Which path the UNet step takes, and what its warm-up (capture or compile) took; the status line shows it."""

    mode: str = "eager"  # "eager", "cuda-graphs" or "compiled"
    note: str = ""  # why eager, what was captured, where the compile cache is
    warmup_s: float | None = None

    def describe(self) -> str:
        warm = f", warm-up {self.warmup_s:.1f} s" if self.warmup_s is not None else ""
        return f"{self.mode}" + (f" ({self.note}{warm})" if self.note or warm else "")


def capture_cuda_graph(unet, sample, timestep, text) -> tuple[Callable[[], None], torch.Tensor]:
    """One CUDA graph of `unet` on the static inputs, as PyTorch's CUDA-graph notes prescribe: warm-up runs on a
    side stream, then capture (into the graph's own memory pool). Returns (graph.replay, static output)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(CAPTURE_WARMUP_RUNS):
            unet(sample, timestep, encoder_hidden_states=text, return_dict=False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    # thread_local: the app captures in its loading thread while Gradio's threads may run a search or a parse
    # on the same GPU (on other streams); "global" would make their CUDA calls fail during the capture.
    with torch.no_grad(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
        output = unet(sample, timestep, encoder_hidden_states=text, return_dict=False)[0]
    torch.cuda.synchronize()
    return graph.replay, output


@dataclass
class _Graph:
    """One captured batch size: its static inputs and output, its replay, and the lock around them."""

    sample: torch.Tensor  # (B, in_channels, h, w)
    timestep: torch.Tensor  # 0-d int64
    text: torch.Tensor  # (B, tokens, width)
    output: torch.Tensor  # (B, 4, h, w), overwritten by every replay
    replay: Callable[[], None]
    lock: threading.Lock = field(default_factory=threading.Lock)


class UNetGraphRunner:
    """Calls like the UNet (`runner(sample, t, encoder_hidden_states=text, return_dict=False)`), replaying a
    captured graph where one fits the call and running the eager UNet where none does."""

    def __init__(self, unet: torch.nn.Module, capture: Capture = capture_cuda_graph) -> None:
        self.unet = unet
        self._capture = capture
        self.graphs: dict[int, _Graph] = {}
        self.capture_s: dict[int, float] = {}  # batch -> seconds its capture took

    def capture(self, batches: Iterable[int], tokens: int, latent_hw: tuple[int, int]) -> float:
        """Capture one graph per batch size (largest first); returns the seconds it all took."""
        config = self.unet.config
        device, dtype = self.unet.device, self.unet.dtype
        started = time.perf_counter()
        generator = torch.Generator(device=device).manual_seed(0)  # random, not zeros: no special-cased kernels
        for batch in sorted(set(batches), reverse=True):
            start = time.perf_counter()
            sample = torch.randn((batch, config.in_channels, *latent_hw), generator=generator, device=device).to(dtype)
            text = torch.randn((batch, tokens, config.cross_attention_dim), generator=generator, device=device).to(
                dtype
            )
            timestep = torch.tensor(500, dtype=torch.int64, device=device)
            replay, output = self._capture(self.unet, sample, timestep, text)
            self.graphs[batch] = _Graph(sample, timestep, text, output, replay)
            self.capture_s[batch] = time.perf_counter() - start
        return time.perf_counter() - started

    def graph_for(self, sample: torch.Tensor, timestep, text: torch.Tensor) -> _Graph | None:
        """The graph captured for exactly these shapes, dtypes and device; None means the eager UNet."""
        graph = self.graphs.get(sample.shape[0])
        if graph is None or not torch.is_tensor(timestep) or timestep.is_floating_point() or timestep.numel() != 1:
            return None
        for given, static in ((sample, graph.sample), (text, graph.text)):
            if given.shape != static.shape or given.dtype != static.dtype or given.device != static.device:
                return None
        return graph

    def __call__(self, sample, timestep, encoder_hidden_states, return_dict: bool = False):
        graph = self.graph_for(sample, timestep, encoder_hidden_states)
        if graph is None:
            return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=return_dict)
        with graph.lock:  # the static buffers are this graph's: one caller at a time from copy-in to clone-out
            graph.sample.copy_(sample)
            graph.timestep.copy_(timestep.reshape(()))
            graph.text.copy_(encoder_hidden_states)
            graph.replay()
            output = graph.output.clone()  # the caller's own: the next replay overwrites the static output
        return (output,)


def configure_compile_cache(directory: Path = COMPILE_CACHE_DIR) -> Path:
    """Point inductor's (and Triton's) on-disk caches at the project's cache folder, before the first compile,
    so that only the first start on a machine pays the full compile (later starts reuse the FX graphs and
    kernels). A cache folder the deployment set already (TORCHINDUCTOR_CACHE_DIR) is kept."""
    directory = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(directory)))
    os.environ.setdefault("TRITON_CACHE_DIR", str(directory / "triton"))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
