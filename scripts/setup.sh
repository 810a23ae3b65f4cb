#!/usr/bin/env bash
# Creates .venv with uv and installs the project with every extra (".[all]").
#
# torch: on a machine without an NVIDIA GPU the CPU build is installed, never the multi-GB CUDA
# build. A local CPU wheel listed in pip's find-links (pip's config or PIP_FIND_LINKS) is used when
# present, since uv does not read pip's config; otherwise the CPU wheel comes from PyTorch's CPU
# index. With `nvidia-smi` present (or RESEARCH_TORCH=cuda) torch comes from PyPI's CUDA build.
# Override the whole choice with RESEARCH_TORCH_SPEC, e.g. RESEARCH_TORCH_SPEC="torch==2.13.0".
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0

if command -v uv >/dev/null 2>&1; then
    UV=(uv)
elif "$PYTHON" -m uv --version >/dev/null 2>&1; then
    UV=("$PYTHON" -m uv)
else
    echo "setup: uv not found; installing it with pip" >&2
    "$PYTHON" -m pip install --quiet uv
    UV=("$PYTHON" -m uv)
fi

[ -x .venv/bin/python ] || "${UV[@]}" venv --quiet --python "$PYTHON" .venv

# Hand pip's find-links to uv (space-separated in pip's config and in PIP_FIND_LINKS).
links="${PIP_FIND_LINKS:-} $("$PYTHON" -m pip config get global.find-links 2>/dev/null || true)"
uv_args=()
local_cpu_wheel=""
for link in $links; do
    dir=${link#file://}
    [ -d "$dir" ] || continue
    uv_args+=(--find-links "$dir")
    if compgen -G "$dir/torch-${TORCH_VERSION}+cpu-*.whl" >/dev/null; then local_cpu_wheel=1; fi
done

mode=${RESEARCH_TORCH:-auto}
if [ "$mode" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then mode=cuda; else mode=cpu; fi
fi
if [ -n "${RESEARCH_TORCH_SPEC:-}" ]; then
    torch_spec=$RESEARCH_TORCH_SPEC
elif [ "$mode" = cuda ]; then
    torch_spec="torch==${TORCH_VERSION}"
else
    torch_spec="torch==${TORCH_VERSION}+cpu"
    if [ -z "$local_cpu_wheel" ]; then
        uv_args+=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
    fi
fi

echo "setup: installing .[all] with $torch_spec into .venv" >&2
# Compile bytecode once here: PYTHONDONTWRITEBYTECODE may be set, and every test subprocess would
# otherwise recompile what it imports.
"${UV[@]}" pip install --quiet --compile-bytecode --python .venv/bin/python "${uv_args[@]}" \
    -e ".[all]" "$torch_spec"
