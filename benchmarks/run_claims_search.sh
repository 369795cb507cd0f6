#!/bin/bash
# The claims table's "searched" row, one command per task: the tool's own default search at the task's claims
# budget with the task's teacher (exactly as a user runs it), then its winner distilled with the recipe and seeds
# of the hand-crafted rows (bench_claims.py train --search-run: the plan records the search command and its run
# folder, and the report refuses a row whose run folder picked another arch). Resumable: rerun to continue (a
# finished search is not redone; finished seeds are kept).
#   benchmarks/run_claims_search.sh mrpc stsb
# Then, with every other job paused (latency), and the table:
#   ../shared/tools/quiet python benchmarks/bench_claims.py measure --task mrpc --root benchmarks/results/claims \
#       --rounds 300 ...     (the extras of docs/results/claims.md)
#   python benchmarks/bench_claims.py report ...   (the command recorded in benchmarks/results/claims.json)
# Environment: ROOT (work area, default runs/claims-search; each task's work folder is seeded from
# benchmarks/results/claims/<task> so the hand-crafted rows stay beside the new one), TEACHERS (a folder with one
# teacher per task, default runs/claims/teachers), GLUE (../shared/data/glue), PY, SEEDS (3), OUT (copy the small
# result files there, default benchmarks/results/claims), SEARCH_ONLY=1 (the search, no distillation),
# PREDICTORS (a predictors folder of this machine, e.g. from `kdnas-bench profile` + `fit` when the search warns
# that this CPU is not the committed predictor's), BUDGET_MS (ms, instead of the table's), NAME (the run folder is
# search-<task>-<NAME>, default "default"), SUPERNET (reuse a trained supernet folder: --supernet), SEARCH_ARGS (more
# options of the search, word-split, e.g. "--rerank-top 6"). Another GLUE task
# (e.g. rte) runs with BUDGET_MS given.
# The budgets are the claims table's measured ones on the reference CPU (the teacher's interleaved latency / 3).
set -uo pipefail
ROOT=${ROOT:-runs/claims-search}; TEACHERS=${TEACHERS:-runs/claims/teachers}; GLUE=${GLUE:-../shared/data/glue}
PY=${PY:-python3}; SEEDS=${SEEDS:-3}; OUT=${OUT:-benchmarks/results/claims}; DEVICE=amd-epyc-2c-243f6e
declare -A BUDGET=([mrpc]=11.88 [stsb]=12.28 [sst2]=11.79)
declare -A EPOCHS=([sst2]=1)  # the hand-crafted rows' recipe: SST-2's 67k examples once, the small tasks 3 epochs
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
for task in "$@"; do
  [ -n "${BUDGET[$task]:-}${BUDGET_MS:-}" ] || { echo "no claims budget for $task (mrpc, stsb, sst2; else give BUDGET_MS)" >&2; exit 2; }
  teacher=$TEACHERS/$task; run=$ROOT/search-$task-${NAME:-default}
  [ -f "$teacher/config.json" ] || { echo "$task: no teacher at $teacher" >&2; continue; }
  search=(kdnas-bench search --device "$DEVICE" --task "$task" --teacher "$teacher"
          --budget-ms "${BUDGET_MS:-${BUDGET[$task]}}" --data-dir "$GLUE" --out "$run"
          ${PREDICTORS:+--predictors "$PREDICTORS"} ${SUPERNET:+--supernet "$SUPERNET"} ${SEARCH_ARGS:-})
  "$PY" -m kdnas_bench "${search[@]:1}" || { echo "$task: search failed" >&2; continue; }
  mkdir -p "$OUT/search-$task-${NAME:-default}"
  for f in result.json evaluations.jsonl run.json summary.json rerank.jsonl latency_checks.jsonl space.toml; do
    [ -f "$run/$f" ] && cp "$run/$f" "$OUT/search-$task-${NAME:-default}/"
  done
  [ -n "${SEARCH_ONLY:-}" ] && continue
  if [ ! -f "$ROOT/$task/plan.json" ] && [ -f "$OUT/$task/plan.json" ]; then  # the hand-crafted rows' work folder
    mkdir -p "$ROOT/$task"; cp "$OUT/$task/plan.json" "$OUT/$task/finals.jsonl" "$ROOT/$task/"
  fi
  "$PY" benchmarks/bench_claims.py train --task "$task" --root "$ROOT" --teacher "$teacher" --device "$DEVICE" \
      --data-dir "$GLUE" --search-run "$run" --searched-from "${search[*]}" --students searched \
      --init inherit --final-epochs "${EPOCHS[$task]:-3}" --final-lr 2e-4 --final-batching length --seeds "$SEEDS" \
      || { echo "$task: distillation failed" >&2; continue; }
  cp "$ROOT/$task/plan.json" "$ROOT/$task/finals.jsonl" "$OUT/$task/"
done
