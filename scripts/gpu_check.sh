#!/usr/bin/env bash
# One command for the GPU check: one Markdown table, also written to a file.
#
# usage: scripts/gpu_check.sh [--out runs/gpu_check.md] [--budget-s SECONDS]
#
# At most 8 minutes in all on one GPU, installs included. With CUDA and a faiss that sees
# no GPU, it first swaps faiss-cpu for faiss-gpu (scripts/install_gpu_faiss.sh: exactly one
# faiss stays installed) when pip can reach the package; if that fails faiss-cpu is put back
# and the GPU merge rows report the error. Without CUDA it runs the CPU parts at small sizes
# and marks each GPU row "skipped: no CUDA". Each row has its own time limit; an error is
# written into its row and the check goes on.
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
total_s=470   # 8 minutes, less a margin for start-up
start=$(date +%s)
out="runs/gpu_check.md"
budget=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a path}"; shift ;;
    --budget-s) budget="${2:?--budget-s needs seconds}"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

has_cuda="$("$py" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)"
if [ "$has_cuda" = 1 ]; then
  faiss_gpus="$("$py" -c 'import faiss; print(faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0)' 2>/dev/null || echo 0)"
  if [ "$faiss_gpus" = 0 ]; then
    # Download first (no change yet): the swap only starts when both wheels are here, so a
    # machine without the package index keeps its working faiss-cpu.
    spec="$("$py" -c 'import tomllib; print(next(s for s in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"] if s.startswith("faiss-gpu")))' 2>/dev/null || echo faiss-gpu-cu12)"
    cpu_version="$("$py" -c 'import importlib.metadata as m; print(m.version("faiss-cpu"))' 2>/dev/null || echo "")"
    wheels="$(mktemp -d)"
    echo "CUDA present but faiss sees no GPU: fetching $spec (90 s at most)"
    if timeout 90 "$py" -m pip download -q -d "$wheels" "$spec" \
       && { [ -z "$cpu_version" ] || timeout 30 "$py" -m pip download -q --no-deps -d "$wheels" "faiss-cpu==$cpu_version"; }; then
      if ! PIP_NO_INDEX=1 PIP_FIND_LINKS="$wheels" timeout 120 bash scripts/install_gpu_faiss.sh --python "$py"; then
        echo "faiss-gpu install failed; putting faiss-cpu back (the GPU merge rows will report it)"
        "$py" -m pip uninstall -y faiss-gpu-cu12 faiss-gpu faiss-gpu-cu11 >/dev/null 2>&1 || true
        [ -n "$cpu_version" ] && PIP_NO_INDEX=1 PIP_FIND_LINKS="$wheels" "$py" -m pip install -q "faiss-cpu==$cpu_version"
      fi
    else
      echo "could not download $spec; keeping faiss-cpu (the GPU merge rows will say faiss sees no GPU)"
    fi
  fi
fi
elapsed=$(( $(date +%s) - start ))
if [ -z "$budget" ]; then budget=$(( total_s - elapsed - 20 )); fi
if [ "$budget" -lt 60 ]; then budget=60; fi
echo "running the check rows (budget ${budget} s)"
timeout $(( budget + 15 )) "$py" -m lab.bench.gpu_check --out "$out" --budget-s "$budget"
rc=$?
if [ $rc -ne 0 ]; then
  echo "gpu_check exited $rc; the rows measured so far are in $out" >&2
  [ -f "$out" ] && cat "$out"
fi
exit $rc
