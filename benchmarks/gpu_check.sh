#!/bin/bash
# GPU verification for kdnas-bench (run on a CUDA machine from the checkout root). OUT: where results go.
#
# PARTS=train (default): training on the GPU with --accelerator cuda, each step under its own timeout within a
#   total of TOTAL seconds (default 480), most important first:
#   (a) the CUDA-path tests (tests/test_gpu.py, tests/test_accelerator.py);
#   (b) teacher finetune of MiniLM on 2,000 SST-2 examples;
#   (e) a full-SST-2 final: 3,384,12,1536 on all 67,349 examples x 1 epoch (goal <= 180 s);
#   (c) a supernet on the full SST-2 training set, 2 epochs (goal <= 600 s; when cut short, the rate of its last
#       checkpoint gives the projected time);
#   (d) a short search (supernet evaluator on (c)'s supernet or a small one, re-ranking, head size of the teacher,
#       a final on 8,000 examples); (c) leaves it SEARCH_RESERVE seconds (default 120).
#   Timings go to $OUT/gpu_train.json (the format of benchmarks/results/gpu_train.json), logs to $OUT/*.log.
#   Data and teacher come from .gpu/ (benchmarks/gpu_prep.sh: SST-2 TSVs, a bf16 MiniLM, the lightgbm wheel), or
#   GLUE=, MINILM=; a wheel in .whl/ or .gpu/whl/ is installed when lightgbm is missing.
# PARTS=profile: the backend conformance suite, an adaptive profile of backend B (MIN minutes), its predictor
#   and a few measured students (the GPU latency check). PARTS="train profile": both.
# Smoke test of the script itself without a GPU: ACCEL=cpu SMOKE=1 TOTAL=2400 (tiny sizes, CPU, caps x CAP_X=5).
B=${B:-torch-cuda}; MIN=${MIN:-3.5}; OUT=${OUT:-/tmp/out}; PARTS=${PARTS:-train}; TOTAL=${TOTAL:-480}
ACCEL=${ACCEL:-cuda}; GLUE=${GLUE:-.gpu/glue}; MINILM=${MINILM:-.gpu/minilm}; W=${WORK:-/tmp/kdnas-gpu-work}
T0=$(date +%s); mkdir -p "$OUT" "$W"
WHL=$(ls .whl/*.whl .gpu/whl/*.whl 2>/dev/null); SITE=${SITE:-/tmp/site}
if [ -n "$WHL" ] && ! python3 -c "import lightgbm" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $WHL || exit 1
  export PYTHONPATH=$SITE
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
K="python3 -m kdnas_bench"
{ date; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; nproc; uptime
python3 -c "import torch, transformers, onnxruntime as o, lightgbm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported(), 'transformers', transformers.__version__, 'ort', o.__version__)"
python3 -c "import kdnas_bench.cli, kdnas_bench.search.api, kdnas_bench.supernet.train; print('kdnas_bench imports without datasets / the MiniLM package')"
} 2>&1 | tee "$OUT/env.txt"

left() { echo $(( TOTAL - ($(date +%s) - T0) )); }
# step NAME MAX_SECONDS CMD...: run CMD under min(MAX, time left - 10 s), log to $OUT/NAME.log, wall time and exit
# code to $OUT/steps.jsonl; skipped when under 30 s are left
step() {
  local name=$1 max=$(( $2 * ${CAP_X:-1} )); shift 2
  local budget=$(( $(left) - 10 )); [ "$budget" -gt "$max" ] && budget=$max
  if [ "$budget" -lt 30 ]; then
    echo "{\"step\": \"$name\", \"skipped\": \"only $(left) s of the $TOTAL s total left\"}" >> "$OUT/steps.jsonl"; return 1
  fi
  echo "== $name (timeout ${budget}s): $*" | tee -a "$OUT/commands.txt"
  local s=$(date +%s.%N)
  timeout --signal=INT --kill-after=15 "$budget" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  local e=$(date +%s.%N)
  echo "{\"step\": \"$name\", \"rc\": $rc, \"wall_seconds\": $(python3 -c "print(round($e - $s, 1))"), \"timeout\": $budget, \"command\": $(python3 -c 'import json,sys; print(json.dumps(" ".join(sys.argv[1:])))' "$@")}" >> "$OUT/steps.jsonl"
  tail -4 "$OUT/$name.log"; return $rc
}

if [[ " $PARTS " == *" train "* ]]; then
  SPACE=search/spaces/minilm-students.toml; FULL=67349; SN_EPOCHS=2; FT=2000; SEARCH_FINAL=8000; EP=6; CAND=10; RR=500
  if [ -n "$SMOKE" ]; then FULL=300; SN_EPOCHS=1; FT=200; SEARCH_FINAL=200; EP=2; CAND=3; RR=40; CAP_X=${CAP_X:-5}; fi
  case $GLUE in /*) ;; *) GLUE=$PWD/$GLUE;; esac; case $MINILM in /*) ;; *) MINILM=$PWD/$MINILM;; esac
  rm -f "$OUT/steps.jsonl"
  # (a) the CUDA-path tests (the tiny teachers take the MiniLM folder's tokenizer, the data .gpu/glue)
  step tests 150 env KDNAS_TEST_GLUE="$GLUE" KDNAS_TEST_MINILM="$MINILM" python3 -m pytest -q -p no:cacheprovider \
    tests/test_gpu.py tests/test_accelerator.py -rs
  # (b) the teacher
  step teacher 150 $K teacher finetune --backbone "$MINILM" --task sst2 --data-dir "$GLUE" --max-examples $FT --epochs 1 \
    --accelerator $ACCEL --out "$W/teacher" --json
  # (e) a full-SST-2 final of a 3-layer x 384 student (the search's final recipe: losses logits,ce, 1 epoch)
  step final 200 $K distill --teacher "$W/teacher" --task sst2 --arch 3,384,12,1536 --data-dir "$GLUE" \
    --max-examples $FULL --epochs 1 --losses logits,ce --accelerator $ACCEL --out "$W/final" --json
  # (c) the supernet on the full training set (checkpoints every 60 s: a cut-short run still gives its rate)
  step supernet $(( $(left) - ${SEARCH_RESERVE:-120} )) $K supernet train --teacher "$W/teacher" --task sst2 --data-dir "$GLUE" --space $SPACE \
    --out "$W/supernet" --max-examples $FULL --epochs $SN_EPOCHS --accelerator $ACCEL --json
  # (d) a short search on the GPU (predicted latency of the 2-core CPU device: train here, deploy there)
  SN=(--supernet-examples 2000 --supernet-epochs 1)
  [ -f "$W/supernet/supernet.json" ] && SN=(--supernet "$W/supernet")
  step search 300 $K search --device amd-epyc-2c-243f6e --backend torch --budget-ms 12.75 --task sst2 \
    --teacher "$W/teacher" --data-dir "$GLUE" --space $SPACE --evaluator supernet "${SN[@]}" --head-dim teacher \
    --rerank-examples $RR --episodes $EP --candidates $CAND --final --final-examples $SEARCH_FINAL --final-epochs 1 --accelerator $ACCEL \
    --out "$W/search" --json
  python3 benchmarks/gpu_summary.py --work "$W" --out "$OUT" --full $FULL --supernet-epochs $SN_EPOCHS --teacher-examples $FT \
    2>&1 | tail -40
fi

if [[ " $PARTS " == *" profile "* ]]; then
  set -o pipefail
  timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_backends.py tests/test_backends_deploy.py -rs 2>&1 | tail -25 | tee $OUT/pytest.txt
  DEV=$(python3 -c "from kdnas_bench.profiling.device import environment; print(environment('$B',1)['device_id'])")
  echo "device_id $DEV" | tee -a $OUT/env.txt
  timeout $(python3 -c "print(int($MIN*60+90))") $K profile --backend $B --threads 1 --minutes $MIN --store $OUT/profiles --json 2>&1 | tail -40 | tee $OUT/profile.txt
  $K fit --device $DEV --backend $B --threads 1 --store $OUT/profiles --out $OUT/predictors 2>&1 | tail -30 | tee $OUT/fit.txt
  for a in 6,384,12,1536 3,256,4,1152 3,256,8,640 2,128,2,512; do for s in "1 128" "32 128"; do set -- $s
    $K measure --arch $a --batch $1 --seq $2 --backend $B --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['backend'], d['arch'], d['batch'], d['seq'], round(d['median_ms'],4), 'cv', round(d['cv'],3))"; done; done | tee $OUT/measure.txt
  tar czf $OUT/gpu_profile.tgz -C $OUT profiles predictors; rm -rf $OUT/profiles $OUT/predictors
fi
