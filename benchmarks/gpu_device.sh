#!/usr/bin/env bash
# The GPU run of benchmarks/gpu.py on the device machine (docs/gpu.md says when and why).
#
#   benchmarks/gpu_device.sh stage      # here: the models, the cp312 onnxruntime-gpu wheel in 5 parts
#   benchmarks/gpu_device.sh part K     # there, once per part (K = 1..5), calls back to back
#   benchmarks/gpu_device.sh go         # there: assemble, install, doctor, gpu.py, GPU tests -> $OUT
#
# The wheel (~255 MB) is over one call's 64 MiB, so it travels in 50 MiB parts, one call each,
# into /root/ort on the machine, which keeps them while it stays warm (30 s after a call).
set -uo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
WHEEL=onnxruntime_gpu-${ORT_VERSION}-cp312-cp312-manylinux_2_28_x86_64.whl
SHA256=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
STORE=/root/ort

stage() {
    grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >>.git/info/exclude
    .venv/bin/python benchmarks/gpu.py prepare --out .gpu/models "$@" || exit 1
    if [ ! -f ".gpu/whl/$WHEEL" ]; then
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 -d .gpu/whl \
            "onnxruntime-gpu==$ORT_VERSION" || exit 1
    fi
    echo "$SHA256  .gpu/whl/$WHEEL" | sha256sum -c - || exit 1
    rm -rf .gpu/parts && mkdir -p .gpu/parts/all
    split -b 50M -a 1 ".gpu/whl/$WHEEL" .gpu/parts/all/ort.part.
    local k=0
    for part in .gpu/parts/all/ort.part.*; do
        k=$((k + 1))
        mkdir -p ".gpu/parts/p$k" && mv "$part" ".gpu/parts/p$k/"
    done
    rmdir .gpu/parts/all
    ls -l .gpu/parts/*/ .gpu/models/
}

part() {
    mkdir -p "$STORE" && cp ".gpu/parts/p$1/"ort.part.* "$STORE/" || exit 1
    ls -l "$STORE"
}

go() {
    local out=${OUT:-/tmp/gpu-out}
    mkdir -p "$out"
    cat "$STORE"/ort.part.* >"$STORE/$WHEEL"
    echo "$SHA256  $STORE/$WHEEL" | sha256sum -c - || exit 1
    # Exactly one onnxruntime: the image's CPU build goes, the GPU build comes in its place
    # (beside the nvidia-* CUDA 13 / cuDNN 9 wheels torch brought, which rnnedge preloads).
    python3 -m pip uninstall -y -q onnxruntime
    python3 -m pip install -q --no-deps --no-index "$STORE/$WHEEL" || exit 1
    export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
    nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt"
    python3 -m rnnedge doctor --json >"$out/doctor.json"
    python3 -m rnnedge doctor
    timeout 360 python3 benchmarks/gpu.py run --models .gpu/models --out "$out" 2>&1 |
        tee "$out/gpu-run.log"
    timeout 150 python3 -m pytest -q -rs -m "not slow" tests/test_fp16.py tests/test_cuda.py \
        tests/test_cuda_bench.py tests/test_doctor.py 2>&1 | tee "$out/pytest-gpu.log"
}

case "${1:-}" in
stage) shift && stage "$@" ;;
part) part "$2" ;;
go) go ;;
*) echo "usage: $0 stage [prepare options] | part K | go" >&2 && exit 2 ;;
esac
