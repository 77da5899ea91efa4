"""The presets table of README.md ("Presets"): each preset's architecture and its trainable
parameters, counted on the PyTorch model built for a given number of classes.

    PYTHONPATH=. python scripts/preset_table.py                 # 3 classes, as README
    PYTHONPATH=. python scripts/preset_table.py --classes 2 --json

Prints the Markdown table (parameters rounded as README writes them: 4.28 M, 76 k, 3.7 k) or,
with ``--json``, the exact counts. Nothing is trained; it runs in seconds.
"""

from __future__ import annotations

import argparse
import json

from pace_edge.model import preset
from pace_edge.model.config import PRESETS
from pace_edge.model.pace import PACE

COLUMNS = ("dim", "depth", "kernel", "patch", "pool_dim")


def trainable_parameters(name: str, classes: int) -> int:
    """Trainable parameters of preset ``name`` with a ``classes``-way head."""
    model = PACE(preset(name, classes))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def rounded(n: int) -> str:
    """3 significant figures with a k / M suffix (4,279,555 -> '4.28 M', 3,651 -> '3.65 k')."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return str(n)


def rows(classes: int) -> list[dict]:
    return [{"preset": name, **{c: PRESETS[name][c] for c in COLUMNS},
             "trainable_parameters": trainable_parameters(name, classes)} for name in PRESETS]


def markdown(table: list[dict], classes: int) -> str:
    head = " | ".join(COLUMNS)
    lines = [f"| preset | {head} | trainable parameters ({classes} classes) |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for row in table:
        cells = " | ".join(str(row[c]) for c in COLUMNS)
        lines.append(f"| `{row['preset']}` | {cells} | {rounded(row['trainable_parameters'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=3, help="classes of the head (default: 3)")
    p.add_argument("--json", action="store_true", help="exact counts as JSON instead")
    args = p.parse_args(argv)
    if args.classes < 2:
        p.error("--classes must be at least 2")
    table = rows(args.classes)
    print(json.dumps(table, indent=1) if args.json else markdown(table, args.classes))


if __name__ == "__main__":
    main()
