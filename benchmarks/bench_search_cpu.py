"""Catalog search speed on the CPU: exact faiss, HNSW, IVF-PQ (re-ranked) and plain numpy over synthetic catalogs.

    python benchmarks/bench_search_cpu.py [--sizes 1000 10000 100000] [--with-1m] [--data clustered]
    python benchmarks/bench_search_cpu.py --sizes 1000000 --kinds flat ivfpq   # the 1M case (~15 min)

For each catalog size: build time, index size, single-query latency p50/p99 (one query at a time, as
the app searches, one faiss thread) and recall@10 against brute force (numpy, in blocks). The IVF-PQ
index is written to disk and measured in a fresh child process that memory-maps it and reads the
re-ranked rows of vectors.npy with pread, as the app does (fashion_rag.catalog.index.load_index): its
resident memory (VmRSS after the queries, VmHWM peak) is the cost of serving that catalog. Prints a markdown table with machine info.
Goals of issue 13: HNSW at 100k p50 <= 2 ms with recall@10 >= 0.99; at 1M p50 <= 5 ms, recall@10
>= 0.95 and <= 1.5 GB resident.

Synthetic vectors (768-d, L2-normalised, seeded):
- `clustered` (default): a mixture of 2,000 clusters whose centres lie in a random 64-dimensional
  subspace, each point its centre plus a within-cluster offset in that subspace (0.6 of the centre's
  norm) plus isotropic noise (0.5); a query is drawn the same way. Nearest-neighbour cosine ~0.7, a
  random pair ~0: like garment embeddings, which gather by type, colour and pattern.
- `lowrank`: points of a random 64-dimensional subspace plus isotropic noise (~6% of the energy), no
  clusters: a harder case for graph indexes.
- `gaussian`: isotropic Gaussian vectors, the worst case for any approximate index (every point nearly
  equidistant from every other). Real embeddings do not look like this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag.catalog.index.tiers import (  # noqa: E402
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IVF_PROBES,
    RERANK,
    FileRows,
    RerankedIndex,
    build_faiss_index,
    ivf_lists,
    normalise_rows,
    pq_subquantizers,
    search_index,
)

K = 10


CLUSTERS = 2_000


def synthetic(n: int, dim: int, data: str, rng: np.random.Generator, model: dict) -> np.ndarray:
    """(n, dim) normalised vectors of the `data` model (see the module docstring)."""
    if data == "gaussian":
        return normalise_rows(rng.standard_normal((n, dim), dtype=np.float32))
    basis = model["basis"]  # (64, dim)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):  # in blocks, to keep the temporary arrays small at 1M
        m = min(50_000, n - start)
        if data == "lowrank":
            signal = rng.standard_normal((m, basis.shape[0]), dtype=np.float32) @ basis
            noise = rng.standard_normal((m, dim), dtype=np.float32) * 2.0
            out[start : start + m] = normalise_rows(signal + noise)
        else:
            centres = model["centres"][rng.integers(0, len(model["centres"]), m)]
            offset = 0.6 * normalise_rows(rng.standard_normal((m, basis.shape[0]), dtype=np.float32) @ basis)
            noise = rng.standard_normal((m, dim), dtype=np.float32) * (0.5 / np.sqrt(dim))
            out[start : start + m] = normalise_rows(centres + offset + noise)
    return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """(Q, k) positions of the true top-k by inner product: numpy brute force, 100k rows at a time."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        scores = queries @ vectors[start : start + 100_000].T  # (Q, block)
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best = np.concatenate([best, top + start], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores, best = np.take_along_axis(best_scores, keep, axis=1), np.take_along_axis(best, keep, axis=1)
    return best


def resident_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM, RssAnon) of this process in MB, from /proc/self/status (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:")):
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan")), fields.get("RssAnon", float("nan"))


def child_measure(directory: Path) -> int:
    """In a fresh process: memory-map the IVF-PQ index in `directory` (vectors.npy rows read per query),
    answer its queries one at a time, print latencies, recall and resident memory as JSON."""
    faiss.omp_set_num_threads(1)
    before = resident_mb()[0]
    started = time.perf_counter()
    ivf = faiss.read_index(str(directory / "index.ivfpq.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    ivf.nprobe = int(os.environ.get("BENCH_NPROBE", IVF_PROBES))
    vectors = FileRows.of_npy(directory / "vectors.npy")  # as load_index does: rows read per query
    index = RerankedIndex(ivf, vectors, int(os.environ.get("BENCH_RERANK", RERANK)))
    load_s = time.perf_counter() - started
    queries, truth = np.load(directory / "queries.npy"), np.load(directory / "truth.npy")
    times, cpu, found = latencies(lambda q: search_index(index, q, K)[1], queries)
    rss, hwm, anon = resident_mb()
    print(
        json.dumps(
            {
                "load_s": load_s,
                "p50": float(np.percentile(times, 50)),
                "p99": float(np.percentile(times, 99)),
                "cpu50": float(np.percentile(cpu, 50)),
                "recall": recall_at_k(found, truth),
                "rss_mb": rss,
                "hwm_mb": hwm,
                "anon_mb": anon,
                "rss_before_mb": before,
            }
        )
    )
    return 0


def latencies(search, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query wall-clock and CPU time in ms, and the (Q, K) result positions, one query at a time.

    The CPU time of the process (all its threads, OpenMP and BLAS workers included) does not count the time
    the process waits for a core, so it shows the cost of a query on a machine shared with other work.
    """
    wall, cpu, results = [], [], []
    search(queries[:1])  # warm-up
    for query in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        positions = search(query[None])
        cpu.append((time.process_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start) * 1e3)
        results.append(positions[0])
    return np.array(wall), np.array(cpu), np.array(results)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def numpy_search(vectors: np.ndarray):
    def search(queries: np.ndarray) -> np.ndarray:
        scores = queries @ vectors.T  # (1, N)
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)

    return search


def machine_info() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{dt.date.today().isoformat()} · {model} · {os.cpu_count()} logical CPUs · load average {load} · "
        f"Python {platform.python_version()} · faiss {faiss.__version__} · numpy {np.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--with-1m", action="store_true", help="add the 1M-vector catalog (slow, ~6 GB RAM)")
    parser.add_argument(
        "--kinds", nargs="+", default=["flat", "numpy", "hnsw"], choices=("flat", "numpy", "hnsw", "ivfpq")
    )
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=("clustered", "lowrank", "gaussian"), default="clustered")
    parser.add_argument("--m", type=int, default=HNSW_M, help="HNSW graph degree")
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[HNSW_EF_SEARCH])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[IVF_PROBES], help="IVF lists visited")
    parser.add_argument("--rerank", type=int, nargs="+", default=[RERANK], help="IVF-PQ candidates re-scored")
    parser.add_argument("--search-threads", type=int, nargs="+", default=[1], help="faiss OpenMP threads")
    parser.add_argument("--skip-hnsw-below", type=int, default=0, help="no HNSW for smaller catalogs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child-measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_measure is not None:
        return child_measure(args.child_measure)
    sizes = sorted(set(args.sizes + ([1_000_000] if args.with_1m else [])))

    rng = np.random.default_rng(args.seed)
    basis = rng.standard_normal((64, args.dim), dtype=np.float32) / 8
    model = {"basis": basis, "centres": normalise_rows(rng.standard_normal((CLUSTERS, 64), dtype=np.float32) @ basis)}
    queries = synthetic(args.queries, args.dim, args.data, rng, model)
    build_threads = faiss.omp_get_max_threads()
    rows = []
    for n in sizes:
        vectors = synthetic(n, args.dim, args.data, rng, model)
        truth = exact_top_k(vectors, queries, K)
        size_mb = vectors.nbytes / 1e6
        if "flat" in args.kinds:
            start = time.perf_counter()
            flat = build_faiss_index(vectors, "flat")
            flat_build = time.perf_counter() - start
            for threads in args.search_threads:
                faiss.omp_set_num_threads(threads)
                times, cpu, found = latencies(lambda q, f=flat: search_index(f, q, K)[1], queries)
                label = f"exact (IndexFlatIP, {threads} thr)"
                rows.append((n, label, flat_build, size_mb, times, cpu, recall_at_k(found, truth), ""))
            del flat
        if "numpy" in args.kinds:
            times, cpu, found = latencies(numpy_search(vectors), queries)
            rows.append((n, "numpy (matmul + argpartition)", 0.0, size_mb, times, cpu, recall_at_k(found, truth), ""))
        if "hnsw" in args.kinds and n >= args.skip_hnsw_below:
            faiss.omp_set_num_threads(build_threads)
            start = time.perf_counter()
            hnsw = build_faiss_index(vectors, "hnsw", m=args.m, ef_construction=args.ef_construction)
            hnsw_build = time.perf_counter() - start
            hnsw_mb = faiss.serialize_index(hnsw).nbytes / 1e6
            for ef in args.ef_search:
                hnsw.hnsw.efSearch = ef
                for threads in args.search_threads:
                    faiss.omp_set_num_threads(threads)
                    times, cpu, found = latencies(lambda q, h=hnsw: search_index(h, q, K)[1], queries)
                    label = f"HNSW M={args.m} efC={args.ef_construction} efS={ef}, {threads} thr"
                    rows.append((n, label, hnsw_build, hnsw_mb, times, cpu, recall_at_k(found, truth), ""))
            del hnsw
        if "ivfpq" in args.kinds:
            faiss.omp_set_num_threads(build_threads)
            start = time.perf_counter()
            ivf = build_faiss_index(vectors, "ivfpq", seed=args.seed)
            ivf_build = time.perf_counter() - start
            with tempfile.TemporaryDirectory(prefix="bench-ivfpq-") as folder:
                directory = Path(folder)
                faiss.write_index(ivf, str(directory / "index.ivfpq.faiss"))
                del ivf
                np.save(directory / "vectors.npy", vectors)
                np.save(directory / "queries.npy", queries)
                np.save(directory / "truth.npy", truth)
                ivf_mb = (directory / "index.ivfpq.faiss").stat().st_size / 1e6
                for nprobe in args.nprobe:
                    for rerank in args.rerank:
                        env = dict(os.environ, BENCH_NPROBE=str(nprobe), BENCH_RERANK=str(rerank))
                        result = json.loads(
                            subprocess.run(
                                [sys.executable, __file__, "--child-measure", str(directory)],
                                check=True,
                                capture_output=True,
                                text=True,
                                env=env,
                            )
                            .stdout.strip()
                            .splitlines()[-1]
                        )
                        label = (
                            f"IVF{ivf_lists(n)},PQ{pq_subquantizers(args.dim)} nprobe={nprobe} + exact re-rank of "
                            f"{rerank} (rows by pread), 1 thr"
                        )
                        memory = (
                            f"RSS {result['rss_mb']:.0f} MB (anon {result['anon_mb']:.0f}, peak "
                            f"{result['hwm_mb']:.0f}; {result['rss_before_mb']:.0f} before loading), "
                            f"load {result['load_s']:.2f} s"
                        )
                        rows.append((n, label, ivf_build, ivf_mb, result, None, result["recall"], memory))
        faiss.omp_set_num_threads(build_threads)
        print(f"done {n:,}", file=sys.stderr, flush=True)
        del vectors

    print(f"## Catalog search on the CPU ({args.data} {args.dim}-d vectors, {args.queries} single queries, top-{K})")
    print()
    print(machine_info())
    print(f"Indexes built with {build_threads} OpenMP threads; recall against numpy brute force.")
    print()
    print("| vectors | method | build s | size MB | p50 ms | p99 ms | p50 CPU ms | recall@10 | memory |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for n, label, build, size, times, cpu, recall, memory in rows:
        if isinstance(times, dict):
            p50, p99, cpu50 = times["p50"], times["p99"], times["cpu50"]
        else:
            p50, p99, cpu50 = np.percentile(times, 50), np.percentile(times, 99), np.percentile(cpu, 50)
        print(
            f"| {n:,} | {label} | {build:.2f} | {size:.1f} | {p50:.3f} | {p99:.3f} | {cpu50:.3f} | {recall:.4f} | "
            f"{memory} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
