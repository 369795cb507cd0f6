#!/bin/bash
# GPU verification for kdnas-bench (run on a CUDA machine from the checkout root; OUT, B, MIN optional):
# the backend conformance suite, an adaptive profile of backend B, its predictor, and a few measured students.
B=${B:-torch-cuda}; MIN=${MIN:-3.5}; OUT=${OUT:-/tmp/out}; mkdir -p $OUT
if ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import lightgbm" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
K="python3 -m kdnas_bench"
{ date; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; uptime
python3 -c "import torch, onnxruntime as o, lightgbm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ort', o.__version__, o.get_available_providers())"
} 2>&1 | tee $OUT/env.txt
set -o pipefail
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_backends.py tests/test_backends_deploy.py -rs 2>&1 | tail -25 | tee $OUT/pytest.txt
DEV=$(python3 -c "from kdnas_bench.profiling.device import environment; print(environment('$B',1)['device_id'])")
echo "device_id $DEV" | tee -a $OUT/env.txt
timeout $(python3 -c "print(int($MIN*60+90))") $K profile --backend $B --threads 1 --minutes $MIN --store $OUT/profiles --json 2>&1 | tail -40 | tee $OUT/profile.txt
$K fit --device $DEV --backend $B --threads 1 --store $OUT/profiles --out $OUT/predictors 2>&1 | tail -30 | tee $OUT/fit.txt
for a in 6,384,12,1536 3,256,4,1152 3,256,8,640 2,128,2,512; do for s in "1 128" "32 128"; do set -- $s
  $K measure --arch $a --batch $1 --seq $2 --backend $B --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['backend'], d['arch'], d['batch'], d['seq'], round(d['median_ms'],4), 'cv', round(d['cv'],3))"; done; done | tee $OUT/measure.txt
tar czf $OUT/gpu_profile.tgz -C $OUT profiles predictors; rm -rf $OUT/profiles $OUT/predictors
