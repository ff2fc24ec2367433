#!/usr/bin/env bash
# GPU checks in one go, for a lent GPU machine (no network there): install the `cuda` extra from
# carried wheels, the gpu-marked tests, the three GPU benchmarks and a short compose-gpu scaling
# step. Run from the repository root; every step's output goes to $OUT/<step>.log and all of it
# to $OUT/gpu_check.log (and stdout). The step limits add up to 540 s (under 10 minutes).
#
#   bench/gpu_wheels.sh                      # here, with network: fill .whl/ (carried to the GPU)
#   bench/gpu_check.sh                       # on the GPU machine: python3 of the image, device cuda
#   PY=.venv/bin/python DEVICE=cpu OUT=/tmp/gc bench/gpu_check.sh
#                                            # the same steps on tiny sizes without a GPU (the gpu
#                                            # tests skip there): tries the plumbing
#   DRY_RUN=1 OUT=/tmp/gc bench/gpu_check.sh # print each step's command, run nothing
#
# Wheels in $WHEELS (.whl/) are installed without an index into $SITE: the packages the image
# lacks (pydantic and its needs, accelerate) and the `cuda` extra (liger-kernel, fla-core,
# einops). flash-attn, mamba-ssm and causal-conv1d (`cuda-build`) are tried the same way: they
# install only where a wheel built for the image's torch was carried.

set -u
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu_check}
SITE=${SITE:-/tmp/site}
SCRATCH=${SCRATCH:-/tmp/gpu_check_scratch}  # big files (checkpoints, kernel caches): not under $OUT
WHEELS=${WHEELS:-.whl}
DRY_RUN=${DRY_RUN:-}
LIMIT_X=${LIMIT_X:-1}  # multiplies every step's time limit
if [ "$DEVICE" = cpu ]; then  # tiny sizes: the plumbing, not the numbers (on a CPU that may be busy)
    LIMIT_X=${LIMIT_X_CPU:-4}
    TT_ARGS="--steps 1 --batch 2 --seq 32 --threads 1"
    MFU_ARGS="--small --steps 1"
    MIX_ARGS="--steps 1 --threads 1 --skip-hf --batch 2 --seq 64"
    STEP_ARGS="--tiny --baselines llama,nemotron"
else
    TT_ARGS="--steps 20"
    MFU_ARGS="--steps 10"
    MIX_ARGS="--steps 10"
    STEP_ARGS="--train-tokens 4000000 --baselines llama,nemotron"
fi
mkdir -p "$OUT" "$SCRATCH"
LOG=$OUT/gpu_check.log

export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The CPU side of the CPU-vs-CUDA checks uses the pure-torch paths: compiling the optional
# C++ extensions would spend device time on what the CPU test suite already covers.
export CAMBRIAN_NO_CPP_EXT=1
export CAMBRIAN_GPU_TEST_DEVICE=$DEVICE
export TRITON_CACHE_DIR=$SCRATCH/triton-cache TORCHINDUCTOR_CACHE_DIR=$SCRATCH/inductor-cache

step() {  # step NAME SECONDS CMD...: run CMD under a time limit into $OUT/NAME.log; report status and time
    local name=$1 limit=$(($2 * LIMIT_X))
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    if [ -n "$DRY_RUN" ]; then
        return
    fi
    local start=$SECONDS
    timeout -k 5 "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
    local rc=$?
    echo "=== $name: rc=$rc after $((SECONDS - start))s"
    [ "$rc" = 0 ] || FAILED="$FAILED $name"
}

FAILED=""
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        # the carried wheels, each on its own: one that does not fit the image fails alone
        step wheels 40 bash -c "for w in $WHEELS/*.whl; do
            $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE \"\$w\" \
                || echo \"not installed: \$w\"; done"
    else
        echo "no wheels in $WHEELS: the cuda extra is whatever the image has"
    fi
    step imports 30 "$PY" -c "
import torch, pydantic
import cambrian, cambrian.architectures, cambrian.scaling.trainer
from cambrian.architectures import kernels
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')
for lib, module in kernels.LIBRARIES.items():
    try:
        m = __import__(module)
        print(lib, 'importable', getattr(m, '__version__', ''))
    except Exception as e:
        print(lib, 'missing:', type(e).__name__, str(e)[:200])
for name in ('triton', 'accelerate'):
    try:
        print(name, __import__(name).__version__)
    except Exception as e:
        print(name, 'missing:', type(e).__name__)
"
    tests=$(grep -rlE "^pytestmark = pytest.mark.gpu|^@pytest.mark.gpu" tests --include='test_*.py' | sort | tr '\n' ' ')
    # shellcheck disable=SC2086
    step tests 180 "$PY" -m pytest -q -m gpu $tests -rs -p no:cacheprovider --durations=15
    # shellcheck disable=SC2086
    step train_throughput 60 "$PY" bench/train_throughput.py --device "$DEVICE" $TT_ARGS
    # shellcheck disable=SC2086
    step gpu_mfu 60 "$PY" bench/gpu_mfu.py --device "$DEVICE" $MFU_ARGS
    # shellcheck disable=SC2086
    step mixers 50 "$PY" bench/mixers.py --device "$DEVICE" $MIX_ARGS
    # shellcheck disable=SC2086
    step scaling_step 120 "$PY" bench/gpu_scaling_step.py --config examples/compose-gpu.yaml \
        --device "$DEVICE" --out "$SCRATCH/scaling_step" $STEP_ARGS
    # its records (results, runtime, curves; not the checkpoints or weights) come back under $OUT
    [ -n "$DRY_RUN" ] || (cd "$SCRATCH" && find scaling_step -name '*.json' -size -2M -exec cp --parents {} "$OUT/" \;)
    echo "=== done; failed steps:${FAILED:- none}"
    date -u
} 2>&1 | tee "$LOG"
