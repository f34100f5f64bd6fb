#!/usr/bin/env bash
# The noise ablation of the Noisy Student experiment: one round per variant, all sharing one
# teacher (kept in scratch/teacher-cache), each printing one JSON line into
# scratch/ablation-<preset>.jsonl as {"variant": ..., "result": {...}}. Each variant spells the
# student's whole noise — the paper's (RandAugment 2/9, dropout 0.5, stochastic depth 0.8) or
# what it keeps of it — so a variant means the same under every preset (the demo preset's own
# student noise is lighter).
# Usage: bash scripts/ablation.sh [--preset NAME] [variant ...]   (no variant: all of them, in the
# order below; the preset is `default` unless given). NS_SKIP_BUILD=1 uses the current build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${NS_SKIP_BUILD:-0}" = 1 ] || npm run build --silent
mkdir -p scratch
noise() { echo "--rand-augment $1 --dropout $2 --final-survival $3"; }
FULL=$(noise 2,9 0.5 0.8)
declare -A VARIANTS=(
  [base]="$FULL"
  [no-randaugment]=$(noise 0,0 0.5 0.8)
  [no-dropout]=$(noise 2,9 0 0.8)
  [no-stochastic-depth]=$(noise 2,9 0.5 1)
  [no-noise]=$(noise 0,0 0 1)
  [light-randaugment]=$(noise 2,5 0.5 0.8)
  [light-noise]=$(noise 2,5 0.2 1)
  [randaugment-only]=$(noise 2,9 0 1)
  [light-randaugment-only]=$(noise 1,5 0 1)
  [dropout-only]=$(noise 0,0 0.5 1)
  [stochastic-depth-only]=$(noise 0,0 0 0.8)
  [hard-labels]="$FULL --hard"
  [threshold-0.7]="$FULL --threshold 0.7"
  [unlabeled-5000]="$FULL --unlabeled 5000"
  [steps-2400]="$FULL --student-steps 2400"
  [width-1.5]="$FULL --student-width 1.5"
  [width-1.5-no-stochastic-depth]="$(noise 2,9 0.5 1) --student-width 1.5"
)
PRESET=default
if [ "${1:-}" = --preset ]; then PRESET=$2; shift 2; fi
ORDER=(base no-randaugment no-dropout no-stochastic-depth no-noise hard-labels threshold-0.7 unlabeled-5000 steps-2400 width-1.5)
[ "$#" -gt 0 ] && ORDER=("$@")
for variant in "${ORDER[@]}"; do
  [ -v "VARIANTS[$variant]" ] || { echo "ablation: unknown variant $variant (known: ${!VARIANTS[*]})" >&2; exit 2; }
  echo "ablation: $variant" >&2
  # shellcheck disable=SC2086
  result=$(node packages/ml/dist/experiment/cli.js --json --preset "$PRESET" --rounds 1 --teacher-cache scratch/teacher-cache ${VARIANTS[$variant]} 2>>"scratch/ablation-$PRESET.log")
  echo "{\"variant\":\"$variant\",\"result\":$result}" >> "scratch/ablation-$PRESET.jsonl"
done
