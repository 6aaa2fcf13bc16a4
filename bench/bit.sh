#!/usr/bin/env bash
# BiT-R50x1 (google/bit-50's config, random weights), batch 8 at 224x224 on
# the CPU: one training step (forward, backward, AdamW) and inference, in
# Kiln (bench/bit_bench.cpp) and in HF transformers on PyTorch
# (bench/bit_torch.py), same thread count, images/s and Kiln / PyTorch.
#   bench/bit.sh [--runs R] [--steps K] [build dir, default: build]
# Threads: KILN_NUM_THREADS (default: all cores), used for both. The Python
# is $PYTHON (default python3); without an importable transformers the torch
# column is skipped with a message. The two programs alternate R times
# (default 3) so both see the same machine load; each program reports the
# median of K timed steps, and the table keeps each side's best run.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
steps=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) break ;;
  esac
done
build=${1:-build}
bench="$build/bin/kiln_bench_bit"
[[ -x "$bench" ]] || { echo "bit.sh: $bench not found; build first (cmake --build $build --target kiln_bench_bit)" >&2; exit 1; }

threads=${KILN_NUM_THREADS:-$(nproc)}
export KILN_NUM_THREADS=$threads
python=${PYTHON:-python3}

rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
have_torch=0
if "$python" -c 'import transformers' 2>/dev/null; then
  have_torch=1
else
  echo "bit.sh: '$python -c \"import transformers\"' failed: skipping the PyTorch column (set PYTHON=/path/to/python with torch and transformers)"
fi

echo "bit.sh: $runs run(s) of $steps steps each, $threads threads"
for ((r = 0; r < runs; ++r)); do
  "$bench" --threads "$threads" --steps "$steps" --tsv >> "$rows"
  if ((have_torch)); then
    # Same threads for torch's intra-op pool and its BLAS.
    OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads \
      "$python" bench/bit_torch.py --threads "$threads" --steps "$steps" --tsv >> "$rows"
  fi
done

# rows: bit \t case \t kiln|torch \t images/s; keep the best of each.
awk -F'\t' -v threads="$threads" -v runs="$runs" '
  { key = $2 SUBSEP $3; if (!(key in best) || $4 > best[key]) best[key] = $4 }
  END {
    printf "\nBiT-R50x1, batch 8, 224x224, %d threads, best of %d runs, images/s (higher is better)\n", threads, runs
    printf "%-12s %10s %10s %8s\n", "case", "kiln", "torch", "ratio"
    n = split("train_step inference", cases, " ")
    for (i = 1; i <= n; ++i) {
      c = cases[i]; k = best[c SUBSEP "kiln"]
      if ((c SUBSEP "torch") in best) {
        t = best[c SUBSEP "torch"]
        printf "%-12s %10.2f %10.2f %7.2fx\n", c, k, t, k / t
      } else {
        printf "%-12s %10.2f %10s %8s\n", c, k, "-", "-"
      }
    }
  }' "$rows"
