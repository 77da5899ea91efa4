"""``pace-edge info``: what a bundle holds, after verifying it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "verify a model bundle and describe it"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help=HELP, description=HELP + ".")
    p.add_argument("model", type=Path, help="model bundle directory")
    p.add_argument("--json", action="store_true", help="print model.json after verifying it")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bundle import META_FILE, Bundle

    bundle = Bundle.load(args.model)
    if args.json:
        print((Path(args.model) / META_FILE).read_text().rstrip())
        return 0
    c = bundle.config
    params = sum(int(v.size) for k, v in bundle.weights.items()
                 if not k.startswith("trust."))
    m = bundle.training.get("metrics", {})
    print(f"bundle {args.model} (weights verified)")
    print(f"  model      PACE dim={c.dim} depth={c.depth} kernel={c.kernel} patch={c.patch} "
          f"pool_dim={c.pool_dim}, {params:,} parameters")
    print(f"  classes    {', '.join(bundle.classes)}")
    print(f"  input      {bundle.input_length} points, {bundle.axis[0]:g} … {bundle.axis[-1]:g}")
    steps = [s["name"] for s in bundle.preprocessing.to_list()]
    print(f"  preprocess {' → '.join(steps) if steps else 'none'}")
    if m:
        print(f"  training   epoch {m.get('best_epoch')}/{m.get('epochs_run')}, validation "
              f"accuracy {m.get('val_accuracy', 0):.2%}, {m.get('seconds')} s")
    if "test" in m:
        print(f"  held-out   {m['test']['accuracy']:.2%} on {m['test']['source']}")
    print("  versions   " + json.dumps(bundle.versions))
    return 0
