"""ONNX Runtime INT8: the all-Q/DQ file against the same file with the weights of layers ONNX
Runtime cannot run in INT8 stored dequantized (what the ``x86`` and ``onnx`` INT8 exports
write, :func:`pace_edge.export.quantize.qdq.fold_unfused_weights`): README.md's "Measured on
this project's 2-core machine", the paragraph on the ONNX Runtime INT8 file (faster at batch
1, larger on disk).

The all-Q/DQ file is the ``jetson`` INT8 export's ``model_int8_qdq.onnx`` (TensorRT keeps
every weight Q/DQ); the folded file is made from it here, so both hold the same quantisation.
Both run on ONNX Runtime's CPU provider, timed interleaved in blocks (``perf_counter_ns`` per
call), and their logits are compared (folding must not change them).

    pace-edge export --model runs/cov-paper-s2 --target jetson --precision int8 \
        --calib ../shared/datasets/cov --out exports/jetson-int8
    python benchmarks/ort_int8_fold.py --qdq exports/jetson-int8/model_int8_qdq.onnx

Without ``--qdq`` a randomly initialised ``--preset`` model (default small) is exported that
way on SYNTHETIC calibration spectra, in ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pace_edge.export.quantize.qdq import fold_unfused_weights


def jetson_int8(workdir: Path, preset_name: str) -> Path:
    """The all-Q/DQ ONNX of a random-weight ``preset_name`` model (made once per workdir)."""
    out = workdir / f"jetson-int8-{preset_name}"
    if (out / "model_int8_qdq.onnx").is_file():
        return out / "model_int8_qdq.onnx"
    import torch

    from pace_edge.bundle import Bundle
    from pace_edge.cli.main import main
    from pace_edge.data import make_synthetic, write_npy_folder
    from pace_edge.model import PACE, preset
    from pace_edge.preprocess import Pipeline

    data = make_synthetic(n_per_class=40, seed=3)
    folder = write_npy_folder(workdir / "calib", data)
    torch.manual_seed(0)
    model = PACE(preset(preset_name, len(data.classes))).eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    Bundle(model.config, weights, data.classes, data.axis,
           Pipeline.from_spec("normalize:snv").anchored(data.axis), {}).save(workdir / "bundle")
    if main(["export", "--model", str(workdir / "bundle"), "--target", "jetson",
             "--precision", "int8", "--calib", str(folder), "--out", str(out), "--force"]) != 0:
        raise SystemExit("pace-edge export --target jetson --precision int8 failed")
    return out / "model_int8_qdq.onnx"


def session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare(qdq: Path, folded: Path, batch: int, iterations: int, blocks: int,
            threads: int) -> dict:
    """Median and p99 ms per call of each file at ``batch``, timed interleaved in ``blocks``."""
    sessions = {"all_qdq": session(qdq, threads), "folded": session(folded, threads)}
    first = sessions["all_qdq"].get_inputs()[0]
    length = int(first.shape[-1])
    x = np.random.default_rng(0).standard_normal((batch, length)).astype(np.float32)
    logits = {k: s.run(None, {first.name: x})[0] for k, s in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    per_block = max(1, iterations // blocks)
    for _ in range(blocks):
        for name, s in sessions.items():
            s.run(None, {first.name: x})  # warm after the other one ran
            for _ in range(per_block):
                start = time.perf_counter_ns()
                s.run(None, {first.name: x})
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    p50 = {k: float(np.median(v)) for k, v in times.items()}
    return {"batch": batch, "calls": per_block * blocks,
            "p50_ms": p50, "p99_ms": {k: float(np.percentile(v, 99)) for k, v in times.items()},
            "min_ms": {k: float(min(v)) for k, v in times.items()},
            "folded_faster_by": 1 - p50["folded"] / p50["all_qdq"],
            "max_abs_logit_diff": float(np.abs(logits["folded"] - logits["all_qdq"]).max())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--qdq", type=Path, help="an all-Q/DQ INT8 ONNX (a jetson INT8 export's "
                   "model_int8_qdq.onnx; default: make one)")
    p.add_argument("--preset", default="small", help="of the model it makes (default: small)")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    p.add_argument("--iterations", type=int, default=400, help="calls per file per batch size")
    p.add_argument("--blocks", type=int, default=10, help="interleaved blocks (default: 10)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: 2)")
    p.add_argument("--json", action="store_true", help="print JSON instead")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        qdq = args.qdq or jetson_int8(workdir, args.preset)
        folded = Path(tmp) / "folded.onnx"
        shutil.copyfile(qdq, folded)
        layers = fold_unfused_weights(folded)
        result = {"qdq": str(qdq), "folded_layers": layers,
                  "size_mb": {"all_qdq": qdq.stat().st_size / 1e6,
                              "folded": folded.stat().st_size / 1e6},
                  "runs": [compare(qdq, folded, b, args.iterations, args.blocks, args.threads)
                           for b in args.batch]}
    if args.json:
        print(json.dumps(result))
        return
    size = result["size_mb"]
    print(f"{qdq}: {len(layers)} layers folded ({', '.join(layers) or 'none'}); "
          f"{size['all_qdq']:.2f} MB all-Q/DQ, {size['folded']:.2f} MB folded "
          f"({size['folded'] - size['all_qdq']:+.2f} MB)")
    for r in result["runs"]:
        print(f"batch {r['batch']}: p50 {r['p50_ms']['all_qdq']:.3f} ms all-Q/DQ, "
              f"{r['p50_ms']['folded']:.3f} ms folded: folded {r['folded_faster_by']:+.0%} "
              f"faster ({r['calls']} calls each, interleaved; max |Δlogit| "
              f"{r['max_abs_logit_diff']:.1e})")


if __name__ == "__main__":
    main()
