"""What checking an export's signature costs when a model is loaded: the figure at the end of
README.md's "Signed exports" (``verify_export(DIR)`` against ``verify_export(DIR, trusted)``).

Both calls re-hash ``manifest.json`` and every listed artefact; the second also checks the
Ed25519 signature of the manifest against the trusted keys. Timed as ``python -m timeit``
does: the best of ``--repeat`` means over ``--number`` calls, the two interleaved.

    PYTHONPATH=. python benchmarks/verify_export_cost.py            # a signed ~1 MB ONNX export
    PYTHONPATH=. python benchmarks/verify_export_cost.py --export build-x86 --trusted-keys DIR

Without ``--export`` it makes one in ``--workdir``: a randomly initialised PACE (``--preset``,
default small: about 1.2 MB of FP32 ONNX, most of it the 900 x 256 input pool) on COV's
900-point axis, exported with ``pace-edge export --target onnx --sign``. Prints one line per
case and the export's size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import timeit
from pathlib import Path

import numpy as np

from pace_edge.export.manifest import verify_export
from pace_edge.integrity.signing import load_trusted_keys

AXIS = np.linspace(400.0, 1800.0, 900)  # COV's length


def signed_export(workdir: Path, preset_name: str) -> tuple[Path, Path]:
    """(export, trusted-keys folder): a random-weight bundle exported to FP32 ONNX and signed
    (reused when ``workdir`` already holds them)."""
    out, keys = workdir / f"onnx-{preset_name}", workdir / "keys"
    if (out / "manifest.json.sig").is_file() and (keys / "bench.pub.pem").is_file():
        return out, keys
    import torch

    from pace_edge.bundle import Bundle
    from pace_edge.cli.main import main
    from pace_edge.integrity.signing import generate_key_pair
    from pace_edge.model import PACE, preset
    from pace_edge.preprocess import Pipeline

    torch.manual_seed(0)
    model = PACE(preset(preset_name, 3)).eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    bundle = Bundle(model.config, weights, ["a", "b", "c"], AXIS, Pipeline([]), {})
    bundle.save(workdir / "bundle")
    private, public = generate_key_pair(workdir / "signing", "bench")
    keys.mkdir(exist_ok=True)
    (keys / public.name).write_bytes(public.read_bytes())
    if main(["export", "--model", str(workdir / "bundle"), "--target", "onnx",
             "--out", str(out), "--sign", str(private)]) != 0:
        raise SystemExit("pace-edge export failed")
    return out, keys


def best_mean_ms(statement, number: int, repeat: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=repeat)) / number * 1e3


def measure(export: Path, keys: Path, number: int, repeat: int) -> dict[str, float]:
    trusted = load_trusted_keys(keys)
    verify_export(export, trusted)  # a signature that does not verify stops here
    plain, signed = [], []
    for _ in range(repeat):  # interleaved, so background load hits both alike
        plain.append(best_mean_ms(lambda: verify_export(export), number, 1))
        signed.append(best_mean_ms(lambda: verify_export(export, trusted), number, 1))
    size = sum(f.stat().st_size for f in export.iterdir() if f.is_file())
    return {"export_bytes": size, "unsigned_check_ms": min(plain),
            "signature_check_ms": min(signed), "number": number, "repeat": repeat}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--export", type=Path, help="a signed export (default: make one)")
    p.add_argument("--trusted-keys", type=Path, help="folder of *.pem keys that signed it")
    p.add_argument("--workdir", type=Path, help="where to make the export (default: a temp dir)")
    p.add_argument("--preset", default="small", help="of the export it makes (default: small)")
    p.add_argument("--number", type=int, default=20, help="calls per timing (default: 20)")
    p.add_argument("--repeat", type=int, default=5, help="timings per case (default: 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead")
    args = p.parse_args(argv)
    if (args.export is None) != (args.trusted_keys is None):
        p.error("--export and --trusted-keys go together")
    with tempfile.TemporaryDirectory() as tmp:
        if args.export is None:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            export, keys = signed_export(workdir, args.preset)
        else:
            export, keys = args.export, args.trusted_keys
        result = measure(export, keys, args.number, args.repeat)
    if args.json:
        print(json.dumps(result))
        return
    print(f"export {export.name}: {result['export_bytes'] / 1e6:.2f} MB; best of "
          f"{args.repeat} means over {args.number} calls")
    print(f"verify_export(export)           {result['unsigned_check_ms']:.2f} ms")
    print(f"verify_export(export, trusted)  {result['signature_check_ms']:.2f} ms")


if __name__ == "__main__":
    main()
