"""Person preprocessing speed on the CPU (offline mask path): a 512x512 and a 4000x3000 photo.

    python benchmarks/bench_prepare_cpu.py [--runs 15] [--warmup 3] [--category upper_body]

Times `PersonPreparer.prepare` from a JPEG file (decode included: what an upload costs) and from an
already-loaded PIL image, p50 and p90 over `--runs` runs after `--warmup` runs, with the p50 of each
stage. Photos: skimage's astronaut (512x512) and the same picture upscaled to 3000x3000 and widened to
4000x3000 with a plain backdrop, saved as quality-90 JPEGs; the large one also as a phone would store a
portrait (landscape pixels plus EXIF orientation 6, so loading must rotate 12 MP). The models (mediapipe pose and selfie
segmentation, bundled) are built once, as the app does. Goal of issue 4: p50 under 150 ms (small) and
under 400 ms (large) on 2 CPU cores. Prints a markdown table with machine info.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag.person.photo import load_photo  # noqa: E402
from fashion_rag.person.prepare import PersonPreparer  # noqa: E402

GOALS_MS = {"512x512": 150.0, "4000x3000": 400.0, "4000x3000 EXIF-rotated": 400.0}
STAGES = ("load", "detect", "frame", "pose", "mask")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_photos(directory: Path) -> dict[str, Path]:
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    small = directory / "astronaut_512.jpg"
    astronaut.save(small, quality=90)
    large_image = Image.new("RGB", (4000, 3000), (214, 208, 204))
    large_image.paste(astronaut.resize((3000, 3000), Image.BICUBIC), (500, 0))
    large = directory / "astronaut_4000x3000.jpg"
    large_image.save(large, quality=90)
    # A phone portrait: stored landscape, shown upright through EXIF orientation 6 (turn clockwise).
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = directory / "astronaut_exif6.jpg"
    large_image.transpose(Image.Transpose.ROTATE_90).save(rotated, quality=90, exif=exif.tobytes())
    return {"512x512": small, "4000x3000": large, "4000x3000 EXIF-rotated": rotated}


def measure(preparer: PersonPreparer, photo: object, category: str, runs: int, warmup: int) -> dict[str, object]:
    for _ in range(warmup):
        preparer.prepare(photo, category)
    totals, stages = [], {name: [] for name in STAGES}
    for _ in range(runs):
        start = time.perf_counter()
        prepared = preparer.prepare(photo, category)
        totals.append((time.perf_counter() - start) * 1000)
        for name in STAGES:
            stages[name].append(prepared.timings[name])
    return {
        "p50": float(np.percentile(totals, 50)),
        "p90": float(np.percentile(totals, 90)),
        "stages": {name: float(np.percentile(values, 50)) for name, values in stages.items()},
        "source": prepared.mask_source,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--category", default="upper_body")
    args = parser.parse_args()

    import cv2
    import mediapipe

    started = time.perf_counter()
    preparer = PersonPreparer.from_sources(None)
    build_ms = (time.perf_counter() - started) * 1000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, path in make_photos(Path(tmp)).items():
            loaded = load_photo(path)
            for label, photo in (("JPEG file", path), ("PIL image", loaded)):
                result = measure(preparer, photo, args.category, args.runs, args.warmup)
                rows.append((size, label, result))

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"## prepare on the CPU ({args.category}, offline mask path)\n")
    print(f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- CPU: {cpu_model()}, {cores} cores usable ({os.cpu_count()} online)")
    print(
        f"- python {platform.python_version()}, mediapipe {mediapipe.__version__}, opencv {cv2.__version__}, "
        f"pillow {Image.__version__}, numpy {np.__version__}"
    )
    print(f"- models built once in {build_ms:.0f} ms; {args.warmup} warm-up runs, then {args.runs} timed runs\n")
    print("| photo | input | p50 ms | p90 ms | goal ms | load | detect | frame | pose | mask |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, label, result in rows:
        stages = result["stages"]
        goal = GOALS_MS[size]
        verdict = "ok" if result["p50"] < goal else "over"
        print(
            f"| {size} | {label} | {result['p50']:.1f} | {result['p90']:.1f} | {goal:.0f} ({verdict}) | "
            + " | ".join(f"{stages[name]:.1f}" for name in STAGES)
            + " |"
        )


if __name__ == "__main__":
    main()
