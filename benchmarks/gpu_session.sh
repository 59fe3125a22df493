#!/usr/bin/env bash
# Every GPU check of issues 10 and 16, in four device calls: what a session with a lent GPU runs first.
#
#   bash benchmarks/gpu_session.sh OUT_DIR [quick|tune|tables|extras|ort]
#
# Run from the repository root (the checkout is the package `sg3rt`; it is put on PYTHONPATH under that
# name, so the folder may be called anything). Wheels the GPU image lacks are installed from ./.whl when
# that folder exists: imageio-ffmpeg's Python part (a 17 kB py3-none-any wheel built from its sdist) with
# ffmpeg 9.0.2 from imageio-ffmpeg 0.8.1 (the first build with NVENC encoders) as an xz file (48 MB; 0.8.1's
# 68 MB wheel is over a device call's 64 MiB), starlette, uvicorn, websockets and python-osc for live, and the
# pure-Python rest in case the image lacks them (52 MB in all); fetch them here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       starlette uvicorn websockets python-osc typer click rich shellingham markdown-it-py \
#       mdurl pygments h11 anyio sniffio idna typing_extensions safetensors imageio
#   pip download --no-deps --no-binary=:all: imageio-ffmpeg==0.6.0 -d /tmp/s && pip wheel --no-deps -w .whl /tmp/s/*
#   xz -9e -c $(python -c "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())") > .whl/ffmpeg-linux-x86_64-v9.0.2.xz
#       (with imageio-ffmpeg 0.8.1 installed here)
# and carry .whl (ignored by git) with the call. Each stage has its own time
# limit and log in OUT_DIR, so a stage that fails or hangs costs only its share. Each mode fits one 10-minute
# device call, in this order of need: `quick` (default: kernel tests + the SG3-R 1024 table with per-layer GB/s),
# `tune` (the kernel's tile size and warps per layer in fp16, and exact vs 3xTF32 fp32 dots: what ACT_BLOCK_CUDA,
# NUM_WARPS and fp32's dot precision should be; StyleGAN2's epilogue block; benchmarks/kernel_resources.py says which variants spill),
# `tables` (StyleGAN3-T 1024, StyleGAN3-R 512 and 256, StyleGAN2 1024 with its per-layer epilogue), `extras` (fused equivariance, live at 256/512/1024, MP4 render), and where
# onnxruntime-gpu has been brought, `ort` (ONNX Runtime CUDA on the conv / polyphase / merged export forms).
set -u
out=${1:?usage: gpu_session.sh OUT_DIR [quick|tune|tables|extras|ort]}
mode=${2:-quick}
mkdir -p "$out"
if [ -d .whl ]; then  # pure-Python wheels, then the binary ones (a Python other than 3.12 refuses only those)
    for group in ".whl/*-none-any.whl" ".whl/*-cp3*.whl"; do
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $group \
            || echo "note: wheel install failed: $group" >&2
    done
fi
for xz in .whl/ffmpeg-*.xz; do  # the encoder binary without its wheel: imageio-ffmpeg finds it by this variable
    [ -f "$xz" ] || continue
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
        "$xz" /tmp/ffmpeg-bin && chmod +x /tmp/ffmpeg-bin && export IMAGEIO_FFMPEG_EXE=/tmp/ffmpeg-bin \
        || echo "note: $xz did not unpack" >&2
done
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/sg3rt
export PYTHONPATH=/tmp/pkg:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

stage() {  # stage NAME SECONDS COMMAND...: run with a limit, log to OUT_DIR/NAME.log, never stop the script
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "   exit $? after $((SECONDS - start))s; tail:"
    tail -n 6 "$out/$name.log" | sed 's/^/   /'
}

stage env 60 bash -c 'nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; \
    python3 -c "import torch, triton, sg3rt; print(torch.__version__, torch.version.cuda, triton.__version__, sg3rt.__version__)"; \
    python3 -m sg3rt.cli doctor; \
    ff=$(python3 -c "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())") && "$ff" -hide_banner -version | head -1 && \
    "$ff" -hide_banner -loglevel error -f lavfi -i color=c=gray:s=256x256:d=0.2 -c:v h264_nvenc -f null - \
        && echo "NVENC h264: opens" || echo "NVENC h264: does not open here"'
if [ "$mode" = quick ]; then
# Correctness first: the compiled kernel on every official layer shape, whole networks, CUDA graphs, compile.
stage tests 230 python3 -m pytest -q -p no:cacheprovider tests/test_filtered_lrelu.py tests/test_fir_bias_act.py \
    tests/test_runtime.py tests/test_networks.py -k "fused or official_layer or generic or cuda or compile or noise or strides"
# Speed: SG3-R 1024, fused vs unfused, fp16 / bf16 / fp32, CUDA graphs, per-layer ms and GB/s.
stage bench_r1024 290 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 1024 --batch 1,4,8,16 --iters 8 --layers \
    --variants "torch:fp16:fused,torch:fp16:fused:graphs,torch:bf16:fused:graphs,torch:fp32:fused:graphs@1;4,torch:fp16:matmul:graphs" \
    --out "$out/bench_gpu_r1024.json"
fi
if [ "$mode" = tune ]; then  # the kernel's tile size and warps per layer, fp16 (second call)
    stage tune_r1024 280 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 1024 --variants "" --layers \
        --layer-dtypes fp16 --tiles 32,64,128 --warps 4,8 --out "$out/tune_r1024.json"
    # fp32: exact dots on CUDA cores (32-sample tiles, the default) against 3xTF32 on tensor cores, error beside speed
    stage tune_fp32 170 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 256 --variants "" --layers \
        --layer-dtypes fp32,fp32-tf32x3 --tiles 32,64 --warps 4,8 --out "$out/tune_fp32_r256.json"
    # StyleGAN2's fused epilogue (memory-bound): output block and warps (kernel_resources says 16 outputs/thread spill)
    stage tune_sg2 90 python3 benchmarks/bench_gpu.py --kind stylegan2 --res 1024 --variants "" --layers \
        --layer-dtypes fp16 --tiles 16x64,8x128,32x64,16x32 --warps 4,8 --out "$out/tune_sg2_1024.json"
fi
if [ "$mode" = ort ]; then  # issue 13 on a GPU: which export form ONNX Runtime CUDA runs fastest (needs onnxruntime-gpu,
    # which the GPU image lacks: its wheel travels in pieces over several calls; variants skip with the reason without it)
    stage ort_forms 540 python3 benchmarks/bench_gpu.py --kind stylegan3-r --res 1024 --batch 1,4 --iters 5 \
        --variants "onnxruntime:fp16,onnxruntime:fp16:polyphase,onnxruntime:fp16:merged,torch:fp16:matmul" \
        --out "$out/bench_gpu_ort_forms.json"
fi
if [ "$mode" = tables ]; then  # the other configs of issue 10's table (third call)
    for cfg in "stylegan3-t 1024" "stylegan3-r 512" "stylegan3-r 256" "stylegan2 1024"; do
        set -- $cfg
        layers=""; [ "$1" = stylegan2 ] && layers=--layers  # StyleGAN2's epilogue per layer (SG3-R: quick's run)
        stage "bench_${1}_$2" 140 python3 benchmarks/bench_gpu.py --kind "$1" --res "$2" --batch 1,4,8,16 --iters 8 \
            --variants "torch:fp16:fused:graphs,torch:bf16:fused:graphs,torch:fp16:matmul:graphs" $layers \
            --out "$out/bench_gpu_${1}_$2.json"
    done
fi
if [ "$mode" = extras ]; then  # equivariance, live, MP4 (fourth call)
    # Equivariance: the fused op keeps fp32 inside; unfused fp16 lost 6-9 dB on the references.
    stage eq 150 python3 -m sg3rt.cli eq tests/data/sg3r_256.pkl --device cuda --samples 64 \
        --backend torch-fused:fp16,torch-fused:bf16,torch-matmul:fp16,torch-matmul:fp32 --json "$out/eq_fused.json"
    # Live (issue 16): frames/s a client sees and control-to-photon latency at 256/512/1024 px, best backend.
    stage live 180 python3 benchmarks/bench_live.py --device cuda --res 256,512,1024 --precision fp16 \
        --seconds 6 --trials 15 --out "$out/live_cuda.json"
    # End to end: render to MP4 on the GPU, libx264 beside NVENC (H100/H200 have no NVENC block: those rows
    # record ffmpeg's reason), compute-only / encode-only / render frames/s in one run; then the CLI itself.
    stage render 200 bash -c "python3 -c 'from sg3rt.networks.configs import random_official_generator as r; \
from sg3rt import save_generator; save_generator(r(\"stylegan3-r\", 1024), \"/tmp/r1024.safetensors\")' && \
python3 benchmarks/bench_render.py --network /tmp/r1024.safetensors --device cuda --precision fp16 --cuda-graphs \
--frames 120 --repeats 2 --formats mp4 --codecs h264,h264-nvenc --out $out/render_cuda.json && \
python3 -m sg3rt.cli render -n /tmp/r1024.safetensors --device cuda --precision fp16 --frames 240 --batch 8 \
-o /tmp/r1024.mp4"
fi
echo "logs and JSON in $out"
