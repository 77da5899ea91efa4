"""``pace-edge demo``: the end-to-end run on the bundled synthetic data set.

Generates seeded, clearly SYNTHETIC Raman-like spectra, trains a small PACE with the standard
preprocessing, evaluates it on a held-out synthetic split, exports it for x86 CPUs, and
classifies a live stream from an emulated OBP spectrometer on a pseudo-terminal.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import positive_int, writable_dir

HELP = "end-to-end demo on a seeded synthetic Raman data set (train, evaluate, export, stream)"
DEMO_PIPELINE = "despike,baseline:asls:lam=1e5,normalize:snv"
LASER_NM = 785.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ".")
    p.add_argument("--out", type=Path, default=Path("pace-edge-demo"),
                   help="working directory for the data, bundle, export and report "
                        "(default: ./pace-edge-demo)")
    p.add_argument("--preset", default="small", help="architecture preset (default: small)")
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs (default: 30)")
    p.add_argument("--per-class", type=positive_int, default=120,
                   help="synthetic training spectra per class (default: 120)")
    p.add_argument("--frames", type=positive_int, default=200,
                   help="spectra to stream from the emulated spectrometer (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for data and training (default: 0)")
    p.set_defaults(run=run)


class _Recording:
    """A spectrum source that remembers the true class of every spectrum it served."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.dark = source.dark
        self.labels: list[int] = []

    def next(self) -> tuple[np.ndarray, int]:
        counts, label = self.source.next()
        self.labels.append(label)
        return counts, label


def _stream_demo(export_dir: Path, frames: int, seed: int) -> tuple[dict[str, Any], float, str]:
    """Stream ``frames`` synthetic spectra from an emulated OBP spectrometer; score them."""
    from ..runtimes import load_runner
    from ..streaming.drivers import open_spectrometer
    from ..streaming.emulator import Emulator, SyntheticSource, default_coefficients
    from ..streaming.pipeline import StreamClassifier, StreamConfig
    from ..streaming.spectral_axis import SpectralAxis

    shift = SpectralAxis.from_coefficients(default_coefficients(1024), 1024, LASER_NM).axis
    source = _Recording(SyntheticSource(shift, np.random.default_rng(seed), peak_counts=819.0))
    records: list[dict[str, Any]] = []
    with load_runner(export_dir, backend="auto") as runner, Emulator(
        "obp", source=source, seed=seed
    ) as emu:
        runner.warmup()
        device = open_spectrometer("obp", emu.port, timeout=2.0)
        try:
            stats = StreamClassifier(
                device, runner, StreamConfig(laser_nm=LASER_NM, max_frames=frames),
                records.append,
            ).run()
        finally:
            device.close()
        backend = f"{runner.name} {runner.precision}"
        classes = runner.classes
    truth = {i: classes[label] for i, label in enumerate(source.labels)}
    scored = [r for r in records if "class" in r]
    correct = sum(r["class"] == truth.get(r["seq"]) for r in scored)
    return stats.summary(), correct / max(1, len(scored)), backend


def run(args: argparse.Namespace) -> int:
    from ..data import make_synthetic, write_npy_folder
    from ..evaluate import save_confusion_png
    from ..model import preset
    from ..preprocess import Pipeline
    from ..train import Recipe
    from ..train.bundle_training import train_bundle
    from .main import build_parser
    from .progress import EpochBar
    from .scoring import score_bundle

    start = time.perf_counter()
    out = writable_dir(args.out, "demo")
    train = make_synthetic(n_per_class=args.per_class, seed=args.seed)
    test = make_synthetic(n_per_class=max(10, args.per_class // 3), seed=args.seed + 10_000)
    data_dir = write_npy_folder(out / "data", train, test)
    print(f"1/5 data     {len(train)} train + {len(test)} test SYNTHETIC Raman spectra "
          f"({', '.join(train.classes)}), {train.x.shape[1]} points -> {data_dir}")

    pipeline = Pipeline.from_spec(DEMO_PIPELINE)
    recipe = Recipe(epochs=args.epochs, seed=args.seed, augment=False, refit=False)
    config = preset(args.preset, num_classes=len(train.classes))
    bundle_dir = out / "model"
    with EpochBar(recipe.epochs) as bar:
        bundle, result = train_bundle(train, config, recipe, pipeline, on_epoch=bar.update)
    print(f"2/5 train    {args.preset} PACE, preprocessing {DEMO_PIPELINE}: selected epoch "
          f"{result.best_epoch}, validation accuracy {result.val_accuracy:.1%} "
          f"({result.seconds:.0f} s)")

    metrics = score_bundle(bundle, test)
    bundle.training["metrics"]["test"] = {"source": test.source, **metrics.to_dict()}
    bundle.save(bundle_dir)
    png = out / "confusion.png"
    save_confusion_png(metrics, str(png), title="synthetic demo: held-out split")
    print(f"3/5 evaluate held-out synthetic accuracy {metrics.accuracy:.1%} "
          f"({metrics.correct}/{metrics.total}); bundle -> {bundle_dir}, confusion -> {png}")

    export_dir = out / "export-x86"
    export_args = build_parser().parse_args(
        ["export", "--model", str(bundle_dir), "--target", "x86", "--out", str(export_dir),
         "--force"]
    )
    export_args.run(export_args)
    print(f"4/5 export   x86 (OpenVINO IR + ONNX, FP32, parity-checked) -> {export_dir}")

    summary, accuracy, backend = _stream_demo(export_dir, args.frames, args.seed)
    lat = summary["latency_ms"]
    print(f"5/5 stream   {summary['received']} spectra from an emulated OBP spectrometer "
          f"(pty, 785 nm Raman): {summary['classified']} classified on {backend}, "
          f"accuracy {accuracy:.1%}; infer p50 {lat['infer']['p50']:.2f} ms, "
          f"end-to-end p99 {lat['total']['p99']:.2f} ms")
    print()
    print(metrics.to_text())
    print(f"\ndone in {time.perf_counter() - start:.0f} s. Next: "
          f"pace-edge evaluate --model {bundle_dir} --data {data_dir}")
    return 0
