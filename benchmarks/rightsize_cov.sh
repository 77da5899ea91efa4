#!/usr/bin/env bash
# Right-sizing on the real COV serum Raman data, one rightsize run per seed.
#
#   benchmarks/rightsize_cov.sh [OUT_ROOT] [SEED...]        (default: runs/rightsize, seeds 0 1 2)
#
# Per seed: the paper preset is trained with `pace-edge train` (skipped when OUT_ROOT/paper-sSEED
# already holds it), then `pace-edge rightsize` trains tiny, small and medium with the same
# recipe and distilled from that paper model (passed as --teacher: the same bundle rightsize
# would train itself), exports every candidate for x86 at INT8, times them side by side at
# batch 1 and 64, and chooses on validation. Test accuracy (--eval) only measures.
# Run again to continue: finished candidates and exports are reused. Then summarise with
#   python benchmarks/rightsize_summary.py OUT_ROOT/rightsize-s*/frontier.json
set -euo pipefail
root=${1:-runs/rightsize}
shift || true
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
data=${PACE_COV:-../shared/datasets/cov}
prep=${PACE_PREPROCESS:-normalize:snv}
mkdir -p "$root"
for seed in "${seeds[@]}"; do
  teacher=$root/paper-s$seed
  if [ ! -f "$teacher/model.json" ]; then
    resume=()
    [ -f "$teacher/training-state.pt" ] && resume=(--resume)
    pace-edge train --data "$data" --out "$teacher" --preset paper --seed "$seed" \
      --preprocess "$prep" --eval "$data" --quiet "${resume[@]}"
  fi
  pace-edge rightsize --data "$data" --out "$root/rightsize-s$seed" --seed "$seed" \
    --preprocess "$prep" --sizes tiny,small,medium,paper --teacher "$teacher" \
    --eval "$data" --quiet
done
