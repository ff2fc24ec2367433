#!/usr/bin/env bash
# GPU checks in one go, for a lent GPU machine (no network there): the gpu-marked tests,
# then the training benchmarks on CUDA. Run from the repository root; everything goes to
# $OUT/gpu_check.log (and stdout).
#
#   bench/gpu_check.sh                       # on the GPU machine: python3 of the image, device cuda
#   PY=.venv/bin/python DEVICE=cpu WHEELS=none QUICK=1 OUT=/tmp/gc bench/gpu_check.sh
#                                            # plumbing dry run without a GPU (gpu tests skip)
#
# Python packages the image lacks (pydantic and its needs) travel as wheels in .whl/
# (see docs/benchmarks.md, "GPU checks"); they are installed into $SITE without an index.
# Each step has its own time limit; the limits add up to under 6 minutes.

set -u
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu_check}
SITE=${SITE:-/tmp/site}
WHEELS=${WHEELS:-.whl}
if [ -n "${QUICK:-}" ]; then TT_STEPS=1 MIX_STEPS=1 MIX_HF=--skip-hf; else TT_STEPS=20 MIX_STEPS=10 MIX_HF=; fi
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log

export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The CPU side of the CPU-vs-CUDA checks uses the pure-torch paths: compiling the optional
# C++ extensions would spend device time on what the CPU test suite already covers.
export CAMBRIAN_NO_CPP_EXT=1
export CAMBRIAN_GPU_TEST_DEVICE=$DEVICE

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, report its status and time
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout -k 5 "$limit" "$@"
    local rc=$?
    echo "=== $name: rc=$rc after $((SECONDS - start))s"
    [ "$rc" = 0 ] || FAILED="$FAILED $name"
}

FAILED=""
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        step wheels 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target "$SITE" "$WHEELS"/*.whl
        export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    else
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    fi
    step imports 30 "$PY" -c "
import torch, transformers, pydantic
import cambrian, cambrian.architectures, cambrian.architectures.hf, cambrian.scaling.trainer
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')
print('transformers', transformers.__version__, 'pydantic', pydantic.VERSION)
if torch.cuda.is_available():  # why the trainer moves a loaded RNG state back to the CPU
    try:
        torch.set_rng_state(torch.get_rng_state().cuda())
        print('set_rng_state accepts a CUDA tensor')
    except TypeError as e:
        print('set_rng_state refuses a CUDA tensor:', e)
for name in ('flash_attn', 'mamba_ssm', 'causal_conv1d', 'triton'):
    try:
        __import__(name)
        print(name, 'importable')
    except Exception as e:
        print(name, 'missing:', type(e).__name__)
"
    tests=$(grep -rl "mark.gpu" tests --include='test_*.py' | sort | tr '\n' ' ')
    # shellcheck disable=SC2086
    step tests 180 "$PY" -m pytest -q -m gpu $tests -rs -p no:cacheprovider --durations=12
    step train_throughput 40 "$PY" bench/train_throughput.py --device "$DEVICE" --steps "$TT_STEPS"
    # shellcheck disable=SC2086
    step mixers 70 "$PY" bench/mixers.py --device "$DEVICE" --steps "$MIX_STEPS" $MIX_HF
    echo "=== done; failed steps:${FAILED:- none}"
    date -u
} 2>&1 | tee "$LOG"
