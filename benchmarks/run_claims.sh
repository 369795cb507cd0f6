#!/bin/bash
# The claims pipeline on the small GLUE tasks, end to end and resumable (rerun it to continue): for each task, a
# teacher (its recipe chosen on a dev-free split of the training set: benchmarks/bench_teachers.py), then every
# student x seeds with one recipe (benchmarks/bench_claims.py train; the searched arch here is the one an earlier
# search recorded in benchmarks/results/claims.json; the tool's own default search at the claims budget and its
# winner's finals are benchmarks/run_claims_search.sh TASK). Latency and the table are separate steps (measure
# under ../shared/tools/quiet on the reference CPU, then report).
#   benchmarks/run_claims.sh mrpc rte stsb                                # CPU, this checkout's venv
#   ACCEL=cuda PY=python3 GLUE=.gpu/glue MINILM=.gpu/minilm ROOT=runs/claims-gpu OUT=$OUT benchmarks/run_claims.sh mrpc rte stsb
#   (.gpu/: benchmarks/gpu_prep.sh, plus the small tasks: cp -r ../shared/data/glue/{MRPC,STS-B,RTE} .gpu/glue/)
# Environment: ROOT (work area, default runs/claims), ACCEL (cpu), PY, GLUE (../shared/data/glue), MINILM (a
# backbone folder; default the packaged all-MiniLM-L6-v2), SEEDS (3), STUDENTS (all), OUT (copy the small result
# files there: plans, finals, teacher figures), RTE_START (the intermediate task for RTE: mrpc), TEACHER_ONLY
# (comma list of tasks that get their teacher and no students), RTE_LRS / RTE_EPOCHS (RTE's recipe grid).
# RTE's candidates include an intermediate-task start from the MRPC teacher, so put mrpc before rte.
set -uo pipefail
ROOT=${ROOT:-runs/claims}; ACCEL=${ACCEL:-cpu}; PY=${PY:-.venv/bin/python}; GLUE=${GLUE:-../shared/data/glue}
SEEDS=${SEEDS:-3}; RTE_START=${RTE_START:-mrpc}
[ -x "$PY" ] || PY=python3
if [ "$PY" = python3 ] && ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import lightgbm" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}   # a GPU machine without LightGBM (benchmarks/gpu_prep.sh)
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
bb=(); [ -n "${MINILM:-}" ] && bb=(--backbone "$MINILM")
common=(--root "$ROOT" --data-dir "$GLUE" --accelerator "$ACCEL")
declare -A SEARCHED=([mrpc]=4,256,8,512 [stsb]=4,256,8,640 [rte]=2,384,12,640 [cola]=1,128,4,512 [sst2]=3,384,12,256)
copy_out() {
  [ -n "${OUT:-}" ] || return 0
  for f in "$ROOT"/*/plan.json "$ROOT"/*/finals.jsonl "$ROOT"/teachers/*-search.jsonl "$ROOT"/teachers/*/metrics.json \
           "$ROOT"/teachers/*/recipe.json; do
    [ -f "$f" ] || continue; rel=${f#"$ROOT"/}; mkdir -p "$OUT/claims/$(dirname "$rel")"; cp "$f" "$OUT/claims/$rel"
  done
}
trap copy_out EXIT
for task in "$@"; do
  case $task in
    mrpc|stsb) "$PY" benchmarks/bench_teachers.py --task "$task" "${common[@]}" "${bb[@]}" --lrs 1e-4 --epochs 3 ;;
    rte) starts=(--start backbone)
         [ -f "$ROOT/teachers/$RTE_START/config.json" ] && starts+=(--start "$RTE_START=$ROOT/teachers/$RTE_START")
         "$PY" benchmarks/bench_teachers.py --task rte "${common[@]}" "${bb[@]}" "${starts[@]}" --lrs "${RTE_LRS:-3e-5,1e-4}" \
             --epochs "${RTE_EPOCHS:-3,6}" ;;
    cola) "$PY" benchmarks/bench_teachers.py --task cola "${common[@]}" "${bb[@]}" --lrs 5e-5,1e-4,2e-4 --epochs 3,6 ;;
    *) echo "unknown task $task (mrpc, stsb, rte, cola)" >&2; exit 2 ;;
  esac || { echo "$task: teacher failed" >&2; continue; }
  case ",${TEACHER_ONLY:-}," in *",$task,"*) copy_out; continue ;; esac   # e.g. MRPC's teacher only, for RTE's start
  "$PY" benchmarks/bench_claims.py train --task "$task" --root "$ROOT" --teacher "$ROOT/teachers/$task" \
      --device amd-epyc-2c-243f6e --searched "${SEARCHED[$task]}" \
      --searched-from "the earlier search's winner (benchmarks/results/claims.json, head size 32)" \
      ${STUDENTS:+--students "$STUDENTS"} --init inherit --final-epochs 3 --final-lr 2e-4 --final-batching length \
      --seeds "$SEEDS" --accelerator "$ACCEL" || echo "$task: students failed" >&2
  copy_out
done
