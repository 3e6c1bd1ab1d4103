#!/usr/bin/env bash
# Swap faiss-cpu for faiss-gpu-cu12 on a GPU edge, then check that exactly one faiss remains.
#
# usage: scripts/install_gpu_faiss.sh [--check] [--python PYTHON]
#
#   (no option)  uninstall every faiss distribution, install faiss-gpu-cu12 (the `gpu` extra's
#                pin in pyproject.toml), verify; run it again after any `pip install -e .`,
#                which brings faiss-cpu back
#   --check      only verify that exactly one faiss distribution is installed (exit 1 if not)
#   --python     interpreter whose environment to change (default: .venv/bin/python, else python3)
#
# faiss-cpu, faiss-gpu and faiss-gpu-cu12 all install the same `faiss/` folder: two of them
# overwrite each other's files, and uninstalling one then breaks the other. So everything
# is removed first and the GPU build is installed alone.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
check_only=0
py=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check_only=1 ;;
    --python) py="${2:?--python needs a path}"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$py" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then py="$repo/.venv/bin/python"; else py="python3"; fi
fi

# Prints the faiss distributions; exit 1 unless exactly one (of kind $1: any | gpu) is installed.
verify() {
  "$py" - "$1" <<'EOF'
import importlib.metadata as md
import sys

want = sys.argv[1]
found = sorted({((d.metadata["Name"] or "").lower().replace("_", "-"), d.version)
                for d in md.distributions()
                if (d.metadata["Name"] or "").lower().replace("_", "-").startswith("faiss")})
print("faiss distributions:", ", ".join(f"{n}=={v}" for n, v in found) or "none")
if len(found) != 1:
    sys.exit(f"error: expected exactly one faiss distribution, found {len(found)}")
if want == "gpu" and not found[0][0].startswith("faiss-gpu"):
    sys.exit(f"error: expected a faiss-gpu build, found {found[0][0]}")
EOF
}

if [ "$check_only" = 1 ]; then
  verify any
  exit 0
fi

# The pin of the `gpu` extra, e.g. faiss-gpu-cu12>=1.9.
spec="$("$py" - "$repo/pyproject.toml" <<'EOF'
import sys, tomllib
extra = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["gpu"]
print(next(s for s in extra if s.startswith("faiss-gpu")))
EOF
)"
installed="$("$py" -m pip list --format=freeze 2>/dev/null | grep -io '^faiss[-_a-z0-9]*' || true)"
if [ -n "$installed" ]; then
  # shellcheck disable=SC2086  # one name per word
  "$py" -m pip uninstall -y $installed
fi
"$py" -m pip install "$spec"
verify gpu
"$py" -c "import faiss; print('faiss', faiss.__version__, 'GPUs visible:', faiss.get_num_gpus())"
