#!/usr/bin/env bash
# Issue 21's device check: one call of the device tool, at most ~8 minutes on an H200.
#
#   here, once:  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#                  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#                  -d .whl diffusers==0.42.1 open_clip_torch==3.3.0 transformers==5.23.0 ftfy wcwidth
#   the call:    run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=540)
#
# The machine's image has torch, numpy, Pillow, OpenCV, timm, tokenizers and safetensors; the carried wheels add
# the project's pinned diffusers/transformers/open_clip (.whl/ is git-ignored). The benchmark stops starting
# sections after --budget-s and writes its JSON as it goes, so what it measured comes back even when cut short.
set -uo pipefail
OUT="${OUT:-$PWD/.bench}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, diffusers, transformers, open_clip; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'open_clip', open_clip.__version__)"
timeout 420 python3 benchmarks/bench_gpu_edit.py --runs 10 --budget-s 320 --bundle /tmp/full-bundle 2>&1 | tee "$OUT/bench.log"
status=${PIPESTATUS[0]}
cp benchmarks/results/gpu-*.json "$OUT/" 2>/dev/null
exit "$status"
