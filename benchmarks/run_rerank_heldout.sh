#!/bin/bash
# A held-out test of the re-ranking's options: at a budget neither was designed on, the default search (four places,
# rungs ordered by the metric) against `--rerank-top 6 --rerank-by fidelity`, each task's pick distilled with the
# claims recipe (the whole training set x 3 epochs, lr 2e-4, length-grouped batches, inherited weights) for SEEDS
# seeds. Both searches reuse the task's trained supernet and the same one-shot scores (the second run folder is
# seeded with the first's evaluations, latency checks and rungs: only its own rungs run). Where both pick the same
# student it is distilled once. Resumable: rerun to continue.
#   B=9.0 SUPERNETS=runs/claims-search PREDICTORS=runs/claims-search/predictors-here \
#       bash benchmarks/run_rerank_heldout.sh mrpc stsb
# Environment: B (budget, ms), ROOT (work area, default runs/heldout), TEACHERS (runs/claims/teachers), SUPERNETS
# (a folder holding search-<task>-default/supernet), PREDICTORS (this machine's predictors folder), GLUE, SEEDS (3),
# OUT (small result files, default benchmarks/results/claims/heldout-<B>ms).
set -uo pipefail
B=${B:-9.0}; ROOT=${ROOT:-runs/heldout}; TEACHERS=${TEACHERS:-runs/claims/teachers}; GLUE=${GLUE:-../shared/data/glue}
SUPERNETS=${SUPERNETS:-runs/claims-search}; SEEDS=${SEEDS:-3}; OUT=${OUT:-benchmarks/results/claims/heldout-${B}ms}
DEVICE=amd-epyc-2c-243f6e
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
declare -A ARGS=([default]="" [fid6]="--rerank-top 6 --rerank-by fidelity")
winner() { python3 -c "import json,sys; a=json.load(open(sys.argv[1]))['winners'][0]['arch']; print(','.join(str(a[k]) for k in ('layers','hidden','heads','ffn')))" "$1/result.json"; }
for t in "$@"; do
  base=(kdnas-bench search --device $DEVICE --task "$t" --teacher "$TEACHERS/$t" --budget-ms "$B" --data-dir "$GLUE"
        ${PREDICTORS:+--predictors "$PREDICTORS"} --supernet "$SUPERNETS/search-$t-default/supernet")
  for v in default fid6; do
    run=$ROOT/search-$t-$v
    if [ $v = fid6 ] && [ ! -f "$run/run.json" ]; then  # reuse the default run's one-shot scores and measurements
      mkdir -p "$run"
      for f in evaluations.jsonl latency_checks.jsonl rerank.jsonl space.toml; do
        [ -f "$ROOT/search-$t-default/$f" ] && cp "$ROOT/search-$t-default/$f" "$run/"
      done
    fi
    "${base[@]}" ${ARGS[$v]} --out "$run" || { echo "$t $v: search failed" >&2; continue 2; }
    mkdir -p "$OUT/search-$t-$v"
    for f in result.json run.json summary.json rerank.jsonl latency_checks.jsonl; do cp "$run/$f" "$OUT/search-$t-$v/" 2>/dev/null; done
  done
  for v in default fid6; do
    run=$ROOT/search-$t-$v
    if [ $v = fid6 ] && [ "$(winner "$run")" = "$(winner "$ROOT/search-$t-default")" ]; then
      echo "$t: both pick $(winner "$run"): distilled once"; continue
    fi
    python3 benchmarks/bench_claims.py train --task "$t" --root "$ROOT/finals-$v" --teacher "$TEACHERS/$t" \
      --device $DEVICE --data-dir "$GLUE" ${PREDICTORS:+--predictors "$PREDICTORS"} --search-run "$run" \
      --searched-from "${base[*]} ${ARGS[$v]} --out $run" --students searched --init inherit --final-epochs 3 \
      --final-lr 2e-4 --final-batching length --seeds "$SEEDS" || { echo "$t $v: distillation failed" >&2; continue; }
    mkdir -p "$OUT/finals-$v/$t"; cp "$ROOT/finals-$v/$t/plan.json" "$ROOT/finals-$v/$t/finals.jsonl" "$OUT/finals-$v/$t/"
  done
done
