"""``pace-edge build-engine``: build, check and list the TensorRT plan of an export on the device.

The work is :func:`pace_edge.export.engine_build.build_engine`; this command parses the options
and prints what it did. ``pace-stream --build-engine`` does the same through TensorRT's C++ API,
for devices without Python.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import positive_int

HELP = "build a TensorRT plan on this machine from a tensorrt or jetson export, and check it"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engine", help=HELP, description=HELP + ".")
    p.add_argument("--export", required=True, type=Path, dest="export_dir", metavar="DIR",
                   help="export directory (pace-edge export --target tensorrt|jetson)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default=None,
                   help="plan precision (default: the export's; int8 needs a jetson int8 export)")
    p.add_argument("--workspace", type=positive_int, metavar="MB",
                   help="builder workspace limit in MiB (default: as exported, 1024)")
    p.add_argument("--trusted-keys", type=Path, metavar="DIR",
                   help="build only from an export signed by one of the Ed25519 public keys "
                        "(*.pem) in DIR")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..export.engine_build import build_engine
    from ..export.engine_record import ENGINE_FILE

    trusted = None
    if args.trusted_keys is not None:
        from ..integrity.signing import load_trusted_keys

        trusted = load_trusted_keys(args.trusted_keys)
    final, header, _ = build_engine(args.export_dir, args.precision, args.workspace, trusted,
                                    log=print)
    print(f"wrote {final} ({header.engine_bytes / 1e6:.2f} MB engine; TensorRT "
          f"{header.tensorrt_version}, {header.gpu_name} sm {header.compute_capability}, "
          f"flags {header.builder_flags or ['none']}, cleared {header.cleared_flags or ['none']})")
    print(f"recorded it and its check in {Path(args.export_dir) / ENGINE_FILE}; manifest.json "
          "is unchanged")
    return 0
