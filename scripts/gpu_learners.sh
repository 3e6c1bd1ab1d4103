#!/usr/bin/env bash
# BUC FedUReID against cluster-contrast FedUReID (issue 13) on one lent GPU, 3 seeds at once.
#
# usage: scripts/gpu_learners.sh OUT_DIR [BUDGET_S]
#
# Runs on a device with torch but without Ray, faiss or a package index (the lent H200):
# the federation runs in one process per seed and variant (reid_core.experiments.inprocess),
# k-NN falls back to torch, Hydra comes from .gpu/site. Inputs, made here beforehand by
# scripts/prepare_gpu_carry.py (never committed: .gpu/ in .git/info/exclude): .gpu/data.tgz (../shared/data re-encoded
# at 192x96 JPEG to fit the 64 MiB carry, fed at 256x128), .gpu/weights (ImageNet
# MobileNetV2), .gpu/site.tgz (hydra, omegaconf, antlr4). A CUDA smoke run goes first and
# stops the script within a minute if the learners fail on CUDA. Results: OUT_DIR/summary.md
# and OUT_DIR/runs.tgz (each run's metrics.json, report.md, log). GPU_SMALL=1 shrinks
# everything to a CPU-sized check of this script; GPU_VARIANTS="cc_fedureid" runs one variant.
set -uo pipefail
out="${1:?usage: scripts/gpu_learners.sh OUT_DIR [BUDGET_S]}"
budget="${2:-430}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
py="${PY:-python3}"
export PYTHONPATH="$repo/.gpu/site:$repo" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
start=$(date +%s)
runs="$(mktemp -d /tmp/gpu_runs.XXXX)"   # fresh each call: in-process runs never resume
mkdir -p "$out" "$runs"
# the images travel as one archive (the carry limit counts each file's overhead)
for part in data site; do
  if [ ! -d .gpu/$part ] && [ -f .gpu/$part.tgz ]; then tar xzf .gpu/$part.tgz -C .gpu || exit 3; fi
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
"$py" -c "import torch, hydra, sklearn; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  2>&1 | tee -a "$out/gpu.txt" || exit 3

common=(data.root=.gpu/data model.weights=.gpu/weights/mobilenet_v2_imagenet_features.pt train.progress=false)
if [ "${GPU_SMALL:-0}" = 1 ]; then
  sched=(data.clients=[prid2011,ilids] "data.pseudo_cameras=[ilids]" image.height=64 image.width=32 rounds=2
         train.first_round_epochs=1 train.epochs=1 image.num_workers=0)
  seeds=(0)
else
  # 256x128 (the ReID standard), 15 local epochs in all: 6 + 3 x 3 (PE may stop earlier)
  sched=(image.height=256 image.width=128 rounds=4 train.first_round_epochs=6 train.epochs=3 image.num_workers=2)
  seeds=(0 1 2)
fi

# 1. smoke: both learners through the loop on CUDA, the synthetic smoke federation, one round
# (GPU_SMOKE=0 skips it on a rerun of code that already passed it)
[ "${GPU_SMOKE:-1}" = 0 ] || "$py" -m reid_core.experiments.inprocess experiment=smoke rounds=1 "+learner_for.edge_b=cc" \
  run_dir="$runs/smoke" > "$out/smoke.log" 2>&1
rc=$?
tail -5 "$out/smoke.log"
if [ $rc -ne 0 ]; then echo "smoke failed (exit $rc): stopping"; tail -40 "$out/smoke.log"; exit 4; fi
echo "smoke ok after $(( $(date +%s) - start )) s"

# 2. the comparison: every (variant, seed) at once, one deadline for all
left=$(( budget - ($(date +%s) - start) - 20 ))
pids=()
for seed in "${seeds[@]}"; do
  for variant in ${GPU_VARIANTS:-fedureid cc_fedureid}; do
    if [ $variant = fedureid ]; then v=(experiment=real_cpu algorithm=fedureid); else
      v=(experiment=real_cpu_cc algorithm=fedureid learner=cc); fi
    dir="$runs/$variant/seed_$seed"
    mkdir -p "$dir"
    timeout $(( left + 30 )) "$py" -m reid_core.experiments.inprocess "${v[@]}" "${common[@]}" "${sched[@]}" seed=$seed \
      run_dir="$dir" --deadline-s "$left" > "$dir/log.txt" 2>&1 &
    pids+=($!)
  done
done
echo "started ${#pids[@]} runs, deadline ${left} s"
( while sleep 30; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) \
  >> "$out/gpu.txt" 2>&1 &
poll=$!
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
kill $poll 2>/dev/null
echo "runs done after $(( $(date +%s) - start )) s, $fails failed"

# 3. one table: final mAP / rank-1 per client, per variant and seed, and each run's wall time
"$py" - "$runs" > "$out/summary.md" <<'EOF'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
rows = []
for f in sorted(root.glob("*/seed_*/metrics.json")):
    m = json.loads(f.read_text())
    rounds = len(m["rounds"])
    cells = "; ".join(f"{c} {v['rank1']:.1f}/{v['mAP']:.1f}" for c, v in sorted(m["final"].items()))
    mean = sum(v["mAP"] for v in m["final"].values()) / len(m["final"])
    rows.append(f"| {f.parts[-3]} | {f.parts[-2]} | {rounds} | {m['wall_s_serverapp']:.0f} | {cells} | {mean:.1f} |")
print("| variant | seed | rounds | wall s | per client rank-1/mAP | mean mAP |\n|---|---|---|---|---|---|")
print("\n".join(rows))
EOF
cat "$out/summary.md"
for d in "$runs"/*/seed_*; do tail -3 "$d/log.txt"; done
tar czf "$out/runs.tgz" -C "$runs" $(cd "$runs" && ls -d */seed_*/metrics.json */seed_*/report.md */seed_*/log.txt smoke/metrics.json 2>/dev/null)
exit 0
