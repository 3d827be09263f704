#!/bin/sh
# Issue 17's device check, for a lent GPU machine (the `device` tool): one script, one call.
# Builds the CUDA variant of llama-cpp-python, then runs `edgeslm qualify default --gpu-layers auto`
# (which measures the GPU run and a CPU-only run side by side) and checks the VRAM plan against
# NVML's measured peak (within 15%). Writes everything under $OUT (or ./gpu-check).
# Run from the repository root:  sh benchmarks/gpu_check.sh
set -eu
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
python3 -m venv .venv-gpu
. .venv-gpu/bin/activate
pip install -q --upgrade pip
pip install -q nvidia-ml-py
CMAKE_ARGS="-DGGML_CUDA=on" pip install -q --no-cache-dir --force-reinstall --no-deps llama-cpp-python==0.3.36 \
  > "$OUT/build.log" 2>&1
pip install -q -e . >> "$OUT/build.log" 2>&1
nvidia-smi > "$OUT/nvidia-smi.txt"
python - <<'PY' > "$OUT/build.txt"
from edgeslm import device
from edgeslm.backends import offload
print("gpu build:", offload.gpu_build()); print("devices:", device.gpus())
PY
export EDGESLM_HOME="$PWD/$OUT/home"
edgeslm qualify default --plan --gpu-layers auto > "$OUT/plan.json" || true
edgeslm qualify default --gpu-layers auto --runs 3 --json --out "$OUT" > "$OUT/report.json" || true
python - "$OUT/report.json" <<'PY' | tee "$OUT/summary.txt"
import json, sys
r = json.load(open(sys.argv[1]))
g, f, c = r["gpu"], r["figures"], (r.get("cpu_run") or {}).get("figures", {})
print(f"device: {r['verdict']['device']}; verdict {r['verdict']['overall']}")
print(f"layers {g['layers']}: {g['reason']}")
print(f"VRAM plan {g['vram_plan'] / 2**20:.0f} MiB, peak {(g['vram_peak'] or 0) / 2**20:.0f} MiB, error {g['vram_plan_error']}")
for k in ("ttft_512_s", "decode_tps", "tool_call_s"):
    print(f"{k}: GPU {f.get(k)}  CPU {c.get(k)}")
ok = g["vram_peak"] is not None and abs(g["vram_plan_error"]) <= 0.15
print("VRAM plan within 15%:", ok)
sys.exit(0 if ok else 1)
PY
