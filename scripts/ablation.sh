#!/usr/bin/env bash
# The ablation table of the Noisy Student experiment (issue 10): one round of the default preset
# per variant, all sharing one teacher (kept in scratch/teacher-cache), each printing one JSON
# line into scratch/ablation-<preset>.jsonl as {"variant": ..., "result": {...}}.
# Usage: bash scripts/ablation.sh [--preset NAME] [variant ...]   (no variant: all of them, in the
# order below; the preset is `default` unless given, and names the output scratch/ablation-NAME.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${NS_SKIP_BUILD:-0}" = 1 ] || npm run build --silent
mkdir -p scratch
declare -A VARIANTS=(
  [base]=""
  [no-randaugment]="--rand-augment 0,0"
  [no-dropout]="--dropout 0"
  [no-stochastic-depth]="--final-survival 1"
  [no-noise]="--rand-augment 0,0 --dropout 0 --final-survival 1"
  [hard-labels]="--hard"
  [threshold-0.7]="--threshold 0.7"
  [unlabeled-5000]="--unlabeled 5000"
  [steps-2400]="--student-steps 2400"
  [width-1.5]="--student-width 1.5"
  [width-1.5-no-stochastic-depth]="--student-width 1.5 --final-survival 1"
  [light-randaugment]="--rand-augment 2,5"
  [light-noise]="--rand-augment 2,5 --dropout 0.2 --final-survival 1"
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
