#!/usr/bin/env bash
# Kiln's CUDA backend against PyTorch on the same GPU:
#   bench/cuda_run.sh [--quick] [build dir, default: build]
# Runs build/bin/kiln_bench_cuda and bench/cuda_torch.py (the Python is
# $PYTHON, default python3) and prints one table: each case's value in Kiln
# and in PyTorch and the ratio, >1 meaning Kiln is faster (Kiln / torch for
# TFLOP/s and GB/s, torch / Kiln for ms; counts are shown without a ratio).
# Without a GPU both programs say so and nothing is compared; without an
# importable torch the Kiln column prints alone.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
if [[ "${1:-}" == --quick ]]; then quick=(--quick); shift; fi
build=${1:-build}
bench="$build/bin/kiln_bench_cuda"
[[ -x "$bench" ]] || { echo "cuda_run.sh: $bench not found; build first (cmake --build $build --target kiln_bench_cuda)" >&2; exit 1; }
python=${PYTHON:-python3}

kiln_rows=$(mktemp)
torch_rows=$(mktemp)
trap 'rm -f "$kiln_rows" "$torch_rows"' EXIT

echo "cuda_run.sh: measuring Kiln ($bench)..."
"$bench" --tsv "${quick[@]}" > "$kiln_rows"
if grep -q "no CUDA device" "$kiln_rows"; then cat "$kiln_rows"; exit 0; fi
if "$python" -c 'import torch' 2>/dev/null; then
  echo "cuda_run.sh: measuring PyTorch ($python)..."
  "$python" bench/cuda_torch.py --tsv "${quick[@]}" > "$torch_rows"
else
  echo "cuda_run.sh: '$python -c \"import torch\"' failed: no PyTorch column (set PYTHON=/path/to/python with torch)"
fi

awk -F'\t' '
  FILENAME == ARGV[1] { if (NF == 3) torch[$1] = $2; next }
  NF == 3 {
    if (!header++) printf "%-36s %14s %14s %9s  %s\n", "case", "kiln", "torch", "ratio", "unit"
    t = ($1 in torch) ? sprintf("%14.3f", torch[$1]) : sprintf("%14s", "-")
    r = "-"
    if (($1 in torch) && torch[$1] > 0 && $2 > 0) {
      if ($3 == "ms") r = sprintf("%.2f", torch[$1] / $2)
      else if ($3 != "count") r = sprintf("%.2f", $2 / torch[$1])
    }
    printf "%-36s %14.3f %s %9s  %s\n", $1, $2, t, r, $3
  }
' "$torch_rows" "$kiln_rows"
