#!/usr/bin/env bash
# The GPU checks of issues 10, 13 and 16, sized for a session's 15 minutes of device time (a machine's start,
# one to two minutes, included): what a session with a lent GPU runs first.
#
#   bash benchmarks/gpu_session.sh OUT_DIR [first|second|ort-piece|ort]
#
#   first   (one call, at most 6.5 min; run it first): the StyleGAN3-R 1024 table (fused fp16/bf16/fp32 beside
#           the unfused path, CUDA graphs) with per-layer ms, GB/s and error in fp16; live at 256/512/1024 px; then
#           the compiled-kernel tests on every official layer shape, whole networks, CUDA graphs, torch.compile.
#   second  (the next call, on the same warm machine, at most 5.5 min): the kernel's tile size and warps per layer
#           (fp16, 1024 px), exact vs 3xTF32 fp32 dots, StyleGAN3-T 1024, StyleGAN2 1024 with its fused epilogue
#           per layer, StyleGAN3-R 256, equivariance of the fused op.
#   ort-piece / ort  (issue 13 on a GPU; a session of its own): onnxruntime-gpu 1.31.1 is 256 MB, four times what
#           one call carries, so `ort-piece` calls bring it in parts while the machine stays warm (a call within
#           30 s of the last), then `ort` unpacks it and times ONNX Runtime CUDA on each export form.
#
# Run from the repository root (the checkout is put on PYTHONPATH as the package `sg3rt`, so its folder may be
# called anything). OUT_DIR gets two files, rewritten after every stage so that a call cut short returns what it
# measured: session.log (every stage's output) and results.tgz (each stage's log and JSON); a device call returns
# at most 8 files. Each stage has its own time limit, so one that fails or hangs costs only its share.
#
# Wheels the GPU image lacks come from ./.whl (ignored by git; carry it with the call): the live extra
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl starlette uvicorn websockets python-osc
# (0.5 MB; the image has anyio, h11, click, typer, numba, safetensors, pillow). For `ort`, see ort-piece below.
set -u
out=${1:?usage: gpu_session.sh OUT_DIR [first|second|ort-piece|ort]}
mode=${2:-first}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=/tmp/sg3rt-gpu-$mode  # the stages' logs and JSON; packed into $out/results.tgz after each stage
mkdir -p "$work"
if [ -d .whl ]; then  # pure-Python wheels, then the binary ones (a Python other than 3.12 refuses only those)
    for group in ".whl/*-none-any.whl" ".whl/*-cp3*.whl"; do
        compgen -G "$group" >/dev/null || continue
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $group \
            || echo "note: wheel install failed: $group" >&2
    done
fi
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/sg3rt
export PYTHONPATH=/tmp/pkg:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

stage() {  # stage NAME SECONDS COMMAND...: run with a limit, log to $work/NAME.log, never stop the script
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "== $name (limit ${limit}s)" | tee -a "$out/session.log"
    timeout -k 5 "$limit" "$@" >"$work/$name.log" 2>&1
    local rc=$?
    cat "$work/$name.log" >>"$out/session.log"
    echo "   $name: exit $rc after $((SECONDS - start))s$([ $rc = 124 ] && echo ' (time limit)'); tail:" | tee -a "$out/session.log"
    tail -n 8 "$work/$name.log" | sed 's/^/   /'
    tar -czf "$out/results.tgz.tmp" -C "$work" . && mv "$out/results.tgz.tmp" "$out/results.tgz"
}

timeout_flag=""  # pytest-timeout (in the GPU image) ends a hung test instead of the whole stage
python3 -c "import pytest_timeout" 2>/dev/null && timeout_flag="--timeout=90"

stage env 30 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; \
    python3 -c "import torch, triton, sg3rt; print(torch.__version__, torch.version.cuda, triton.__version__, sg3rt.__version__)"; \
    python3 -m sg3rt.cli doctor'

if [ "$mode" = first ]; then
    # Speed: SG3-R 1024, fused vs unfused, fp16 / bf16 / fp32, CUDA graphs; per-layer ms and GB/s in fp16.
    stage bench_r1024 120 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 1024 --iters 6 --warmup 2 \
        --variants "torch:fp16:fused:graphs@1;4;8,torch:fp16:fused@1;4,torch:bf16:fused:graphs@1;4,torch:fp32:fused:graphs@1,torch:fp16:matmul:graphs@1;4" \
        --layers --layer-dtypes fp16 --out "$work/bench_gpu_r1024.json"
    # Live (issue 16): frames/s a client sees and control-to-photon latency, 256/512/1024 px, fp16, CUDA graphs.
    stage live 90 python3 benchmarks/bench_live.py --device cuda --res 256,512,1024 --precision fp16 --cuda-graphs \
        --seconds 4 --trials 10 --out "$work/live_cuda.json"
    # Correctness (after the figures, which a failing test must not cost): the compiled kernels on every official
    # layer shape, whole networks against the official outputs, CUDA graphs, torch.compile over the registered ops,
    # the live session on CUDA graphs. (bench_r1024's per-layer rows carry each layer's error against fp32 too.)
    stage tests 140 bash -c "python3 -m pytest -q -ra -p no:cacheprovider $timeout_flag --junitxml=$work/tests_kernels.xml \
        tests/test_filtered_lrelu.py tests/test_fir_bias_act.py; \
        python3 -m pytest -q -ra -p no:cacheprovider $timeout_flag --junitxml=$work/tests_gpu.xml \
        tests/test_runtime.py tests/test_networks.py tests/test_live.py -k 'fused or cuda or compile or gpu'"
fi
if [ "$mode" = second ]; then
    # Tile size and warps per layer in fp16 (kernel_resources.py: 128-sample tiles spill with 4 warps).
    stage tune_r1024 90 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 1024 --variants "" --layers \
        --layer-dtypes fp16 --tiles 32,64,128 --warps 4,8 --out "$work/tune_r1024.json"
    # fp32: exact dots on CUDA cores (32-sample tiles, the default) against 3xTF32 on tensor cores, error beside speed.
    stage tune_fp32 40 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 256 --variants "" --layers \
        --layer-dtypes fp32,fp32-tf32x3 --tiles 32 --warps 4,8 --out "$work/tune_fp32_r256.json"
    for cfg in "stylegan3-t 1024" "stylegan2 1024" "stylegan3-r 256"; do
        set -- $cfg
        layers=""; [ "$1" = stylegan2 ] && layers="--layers --layer-dtypes fp16"  # StyleGAN2's epilogue per layer
        stage "bench_${1}_$2" 40 python3 benchmarks/bench_gpu.py --kind "$1" --res "$2" --iters 6 --warmup 2 \
            --variants "torch:fp16:fused:graphs@1;4;8,torch:fp16:matmul:graphs@1;4" $layers \
            --out "$work/bench_gpu_${1}_$2.json"
    done
    # Equivariance: the fused op keeps fp32 inside; unfused fp16 lost 6-9 dB on the references.
    stage eq 40 python3 -m sg3rt.cli eq tests/data/sg3r_256.pkl --device cuda --samples 32 \
        --backend torch-fused:fp16,torch-matmul:fp16,torch-fused:fp32 --json "$work/eq_fused.json"
fi
if [ "$mode" = ort-piece ]; then
    # One part per call, named in the call's carry (e.g. carry [".ort/part-00"]: .ort is ignored by git, so only
    # the part named travels; 34 MB + the 28 MB checkout fit a call's 64 MiB). The parts, made here:
    #   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    #       --platform manylinux_2_28_x86_64 -d /tmp/ortw onnxruntime-gpu==1.31.1
    #   mkdir -p .ort && split -b 34M -d /tmp/ortw/onnxruntime_gpu-*.whl .ort/part-
    mkdir -p /tmp/ort-parts && cp -v .ort/part-* /tmp/ort-parts/ | tee -a "$out/session.log"
    ls -la /tmp/ort-parts | tee -a "$out/session.log"
fi
if [ "$mode" = ort ]; then  # issue 13 on a GPU: which export form ONNX Runtime CUDA runs fastest
    cat /tmp/ort-parts/part-* >/tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl && \
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            /tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl \
        || echo "note: onnxruntime-gpu did not install: the ORT variants will skip with the reason" | tee -a "$out/session.log"
    stage ort_forms 300 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 1024 --batch 1,4 --iters 5 \
        --variants "onnxruntime:fp16,onnxruntime:fp16:polyphase,onnxruntime:fp16:merged,torch:fp16:matmul,torch:fp16:fused" \
        --out "$work/bench_gpu_ort_forms.json"
fi
echo "session.log and results.tgz in $out"
