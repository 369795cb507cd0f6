"""Deployed students vs what the profiler times: each student folder's ``model.int8.onnx`` against the int8 model the
``onnxruntime-int8`` backend builds for the same arch (random weights), and its ``model.onnx`` against the fp32
one, each pair timed call by call interleaved (same seconds, so drift cancels in the ratio). Run it under
/work/tools/quiet. Writes benchmarks/results/deployed_check.json.

    /work/tools/quiet python benchmarks/check_deployed.py RUN/final/3L-128H-4A-640F STUDENT_DIR ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kdnas_bench.profiling.backends import make_backend
from kdnas_bench.profiling.timing import TimingConfig, time_interleaved
from kdnas_bench.space import Arch, Shape

OUT = Path(__file__).parent / "results" / "deployed_check.json"
TIMING = TimingConfig(warmup=5, min_calls=20, min_seconds=1.0, max_seconds=5.0)


def pair(backend: str, student_file: Path, arch: Arch, shape: Shape, vocab: int) -> tuple[float, float]:
    """(student file median ms, profiled arch median ms), interleaved."""
    dep = make_backend(backend, 1, model_path=str(student_file), vocab_size=vocab)
    ref = make_backend(backend, 1)
    hd, hr = dep.load(arch, shape), ref.load(arch, shape)
    p = time_interleaved(lambda: dep.run(hd), lambda: ref.run(hr), config=TIMING)
    dep.close()
    ref.close()
    return p.target.median_ms, p.canary.median_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("students", nargs="+", help="student folders (config.json, model.onnx, model.int8.onnx)")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    shape = Shape(args.batch, args.seq)
    rows = []
    for folder in map(Path, args.students):
        c = json.loads((folder / "config.json").read_text())
        arch = Arch(c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], c["intermediate_size"])
        int8, arch8 = pair("onnxruntime-int8", folder / "model.int8.onnx", arch, shape, c["vocab_size"])
        fp32, arch32 = pair("onnxruntime", folder / "model.onnx", arch, shape, c["vocab_size"])
        rows.append({"student": str(folder), "arch": str(arch), "deployed_int8_ms": int8, "arch_int8_ms": arch8,
                     "student_fp32_ms": fp32, "arch_fp32_ms": arch32})
        print(json.dumps(rows[-1]), flush=True)
    OUT.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
