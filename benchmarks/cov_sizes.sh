#!/usr/bin/env bash
# Plain (and, when ROOT/paper-s0 exists, distilled) PACE sizes on the real COV data, several
# seeds, each with `pace-edge train`'s default recipe plus SNV, scored on the test split after
# training (measured only; selection uses the validation split of the training data):
#
#   OMP_NUM_THREADS=1 benchmarks/cov_sizes.sh [ROOT] [SIZES] [SEEDS]
#       defaults: runs/cov-sizes  "small tiny medium"  "0 1 2"
#
# Writes ROOT/SIZE-sSEED (plain) and ROOT/SIZE-distilled-sSEED (student of ROOT/paper-s0, the
# paper preset at seed 0, when it exists). Finished bundles are skipped, interrupted ones
# resumed. Summarise with: python benchmarks/sizes_summary.py ROOT
# (OMP_NUM_THREADS=1: on a shared, oversubscribed machine PyTorch's thread pool spins.)
set -euo pipefail
root=${1:-runs/cov-sizes}
read -r -a sizes <<< "${2:-small tiny medium}"
read -r -a seeds <<< "${3:-0 1 2}"
data=${PACE_COV:-../shared/datasets/cov}
train() {  # OUT ARGS...
  local out=$1; shift
  [ -f "$out/model.json" ] && return 0
  local resume=()
  [ -f "$out/training-state.pt" ] && resume=(--resume)
  echo "== $out $(date -u +%T)"
  pace-edge train --data "$data" --out "$out" --eval "$data" --quiet "${resume[@]}" "$@"
}
for size in "${sizes[@]}"; do
  for seed in "${seeds[@]}"; do
    train "$root/$size-s$seed" --preset "$size" --seed "$seed" --preprocess normalize:snv
  done
done
if [ -f "$root/paper-s0/model.json" ]; then
  for size in "${sizes[@]}"; do
    for seed in "${seeds[@]}"; do
      train "$root/$size-distilled-s$seed" --preset "$size" --seed "$seed" \
        --distill-from "$root/paper-s0"
    done
  done
fi
