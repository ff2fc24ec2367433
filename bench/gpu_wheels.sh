#!/usr/bin/env bash
# Fill .whl/ with the wheels bench/gpu_check.sh installs on a GPU machine that has no network:
# the `cuda` extra (liger-kernel, fla-core, einops) and the few pure dependencies the GPU image
# lacked (pydantic and its needs, accelerate, psutil), for CPython 3.12 on manylinux x86_64, at
# the versions installed here where they are. No torch, no triton: the image has its own CUDA
# builds. About 6 MB, well inside what a device call carries (pass .whl in `carry`).
#
#   bench/gpu_wheels.sh [DEST]          # DEST defaults to .whl
set -eu
PY=${PY:-.venv/bin/python}
DEST=${1:-.whl}
PYVER=${PYVER:-3.12}
mkdir -p "$DEST"
pinned() {  # NAME -> NAME==VERSION installed here, or NAME
    local v
    v=$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$1" 2>/dev/null)
    if [ -n "$v" ]; then echo "$1==$v"; else echo "$1"; fi
}
pkgs=""
for p in pydantic pydantic-core annotated-types typing-inspection typing-extensions accelerate psutil \
         liger-kernel fla-core einops; do
    pkgs="$pkgs $(pinned "$p")"
done
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d "$DEST" $pkgs
ls -la "$DEST"
