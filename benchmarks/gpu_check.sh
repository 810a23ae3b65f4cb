#!/usr/bin/env bash
# The custom transformer's checks on a CUDA GPU, in one short run (at most about 9 minutes, the limits
# added up; each step usually ends well within its own).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh       # PEAK_TFLOPS=... for a GPU not in
#                                                       # bench_custom_transformer.PEAK_BF16_TFLOPS
# Steps, each under its own time limit, each leaving JSON (or XML) in $OUT:
#   1. env.json: GPU, driver, CUDA, torch, Triton (nvidia-smi and common.device)
#   2. selfcheck.json: the kernels' self-check in float32 and bf16, compiled on this GPU, timed
#      cold and again in a fresh process (served by the cache)
#   3. pytest_kernels.xml: tests/test_kernels.py and tests/test_kernel_selfcheck.py on the GPU
#   4. custom_transformer_cuda_bf16.json: the benchmark at GPT-2-small size in bf16 (Triton path,
#      autograd twin, compiled twin; MFU, paired tokens/s ratio, peak memory) and the peak memory
#      of a configs/tinystories.yaml step
#   5. resume_cuda.json: stop-and-resume of configs/tiny.yaml on CUDA, bitwise against straight
#   gpu_check.json: each step's exit status and seconds.
# A failing step does not stop the later ones. Exit status: 0 when every step passed.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WORK="$(mktemp -d)"
export RESEARCH_ASSETS_DIR="$WORK/assets"   # the self-check cache and runs stay out of the repo
STATUS="$OUT/gpu_check.status"
: > "$STATUS"

step() {  # step NAME LIMIT_S COMMAND...
    local name="$1" limit="$2"
    shift 2
    local t0 rc
    t0=$(date +%s)
    echo "=== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "$name $rc $(( $(date +%s) - t0 ))" >> "$STATUS"
    echo "=== $name: exit $rc after $(( $(date +%s) - t0 ))s"
}

step env 20 "$PY" - "$OUT/env.json" <<'EOF'
import json, subprocess, sys
import torch, triton
from common import device
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                          "clocks.max.sm", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except OSError as exc:
    smi = f"nvidia-smi: {exc}"
info = {"gpu": device.device_name(), "capability": device.capability(),
        "driver": device.driver_version(), "cuda": device.cuda_version(),
        "memory_mb": device.total_memory_mb(), "torch": torch.__version__,
        "triton": triton.__version__, "nvidia_smi": smi}
print(json.dumps(info, indent=2)); open(sys.argv[1], "w").write(json.dumps(info, indent=2))
sys.exit(0 if info["gpu"] else 1)
EOF

SELFCHECK='
import json, sys, time, torch
from projects.custom_transformer.model import TORCH_KERNELS
from projects.custom_transformer import kernels
from projects.custom_transformer.kernels import selfcheck
out, label = sys.argv[1], sys.argv[2]
result = {}
for dtype in (torch.float32, torch.bfloat16):
    t0 = time.perf_counter()
    chosen, failed = selfcheck.verified_kernels(
        kernels.load(), TORCH_KERNELS, torch.device("cuda"), [dtype])
    result[str(dtype)] = {"seconds": round(time.perf_counter() - t0, 2), "failed": failed,
                          "kernel_set": chosen.name}
data = json.load(open(out)) if label == "cached" else {}
data[label] = result
print(json.dumps(data, indent=2)); open(out, "w").write(json.dumps(data, indent=2))
sys.exit(1 if any(r["failed"] for r in result.values()) else 0)
'
step selfcheck_cold 90 "$PY" -c "$SELFCHECK" "$OUT/selfcheck.json" cold
step selfcheck_cached 20 "$PY" -c "$SELFCHECK" "$OUT/selfcheck.json" cached

step pytest_kernels 100 "$PY" -m pytest -q -p no:cacheprovider \
    --junitxml="$OUT/pytest_kernels.xml" \
    projects/custom_transformer/tests/test_kernels.py \
    projects/custom_transformer/tests/test_kernel_selfcheck.py

PEAK=()
[ -n "${PEAK_TFLOPS:-}" ] && PEAK=(--peak-tflops "$PEAK_TFLOPS")
step benchmark 230 "$PY" benchmarks/bench_custom_transformer.py --device cuda --dtype bf16 \
    --preset gpt2-small --variants handwritten_triton,twin,twin_compile --rounds 2 \
    --compile-rounds 2 --steps 5 --warmup 3 --timeout 120 --max-total-s 170 --tinystories \
    "${PEAK[@]}" --out "$OUT/custom_transformer_cuda_bf16.json" \
    --note "benchmarks/gpu_check.sh"

step resume 60 "$PY" benchmarks/resume_check.py --device cuda --steps 40 \
    --out "$OUT/resume_cuda.json"

"$PY" - "$STATUS" "$OUT/gpu_check.json" <<'EOF'
import json, sys
steps = {}
for line in open(sys.argv[1]):
    name, rc, seconds = line.split()
    steps[name] = {"exit": int(rc), "seconds": int(seconds)}
json.dump({"steps": steps, "all_passed": all(s["exit"] == 0 for s in steps.values())},
          open(sys.argv[2], "w"), indent=2)
print(json.dumps(steps))
EOF
rm -rf "$WORK"
! grep -qv ' 0 ' "$STATUS"
