#!/usr/bin/env bash
# Kiln against PyTorch, same machine, same thread count:
#   bench/run.sh [--quick] [build dir, default: build]
# Threads: KILN_NUM_THREADS (default: all cores), used for both. The Python
# is $PYTHON (default python3); without an importable torch the torch column
# is skipped with a message and Kiln's tables print alone.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
if [[ "${1:-}" == --quick ]]; then quick=(--quick); shift; fi
build=${1:-build}
bench="$build/bin/kiln_bench"
[[ -x "$bench" ]] || { echo "run.sh: $bench not found; build first (cmake --build $build --target kiln_bench)" >&2; exit 1; }

threads=${KILN_NUM_THREADS:-$(nproc)}
export KILN_NUM_THREADS=$threads
python=${PYTHON:-python3}

torch_rows=$(mktemp)
trap 'rm -f "$torch_rows"' EXIT
if "$python" -c 'import torch' 2>/dev/null; then
  echo "run.sh: measuring PyTorch ($python, $threads threads)..."
  # Same threads for torch's intra-op pool and its BLAS.
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
    "$python" bench/torch_bench.py --threads "$threads" "${quick[@]}" > "$torch_rows"
  "$bench" --threads "$threads" "${quick[@]}" --torch "$torch_rows"
else
  echo "run.sh: '$python -c \"import torch\"' failed: skipping the PyTorch column (set PYTHON=/path/to/python with torch)"
  "$bench" --threads "$threads" "${quick[@]}"
fi
