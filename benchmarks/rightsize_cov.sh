#!/usr/bin/env bash
# Right-sizing on the real COV serum Raman data, one rightsize run per seed.
#
#   benchmarks/rightsize_cov.sh [OUT_ROOT] [SEED...]        (default: runs/rightsize, seeds 0 1 2)
#
# Per seed, `pace-edge rightsize` trains tiny, small, medium and paper with train's default
# recipe, the paper size once more without the refit as the distillation teacher (or uses
# OUT_ROOT/paper-norefit-sSEED when it holds one: `pace-edge train ... --preset paper --seed
# SEED --no-refit`), tiny, small and medium distilled from it, exports every candidate for x86
# at INT8, times them side by side at batch 1 and 64, and chooses on validation. Test accuracy
# (--eval) only measures. Run again to continue: finished candidates and exports are reused.
# Then summarise with
#   python benchmarks/rightsize_summary.py OUT_ROOT/rightsize-s*/frontier.json
set -euo pipefail
root=${1:-runs/rightsize}
shift || true
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
data=${PACE_COV:-../shared/datasets/cov}
mkdir -p "$root"
for seed in "${seeds[@]}"; do
  teacher=()
  [ -f "$root/paper-norefit-s$seed/model.json" ] && teacher=(--teacher "$root/paper-norefit-s$seed")
  pace-edge rightsize --data "$data" --out "$root/rightsize-s$seed" --seed "$seed" \
    --sizes tiny,small,medium,paper --eval "$data" --quiet "${teacher[@]}"
done
