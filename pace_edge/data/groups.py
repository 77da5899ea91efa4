"""Group labels: which sample (or patient) each spectrum was measured on.

Several spectra of one sample are not independent: a split that puts some of them in training
and others in validation measures how well the model recognises the sample, not the class.
Group ids are kept as strings (``"17"``, ``"patient-03"``), one per spectrum. They come from the
data's layout (``train_groups.npy``, a ``group`` column, sample sub-folders) or from a file
given with ``--groups`` (:func:`read_groups_file`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DataError
from .spectrum_file import load_npy, read_text_lines

GROUP_COLUMN = "group"


def group_ids(values: np.ndarray, source: str) -> np.ndarray:
    """``values`` (numbers or text, 1-D) as a string array of group ids.

    Integral floats become ``"3"`` rather than ``"3.0"``. Raises :class:`DataError` naming
    ``source`` and the first bad row for NaN/inf, empty ids or a non-1-D array.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"{source}: group ids must be a 1-D array, got shape {values.shape}")
    if values.size == 0:
        raise DataError(f"{source}: no group ids")
    kind = values.dtype.kind
    if kind == "f":
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"{source}: row {bad[0]}: group id is {values[bad[0]]}")
        integral = values == np.round(values)
        ids = [str(int(v)) if whole else repr(float(v))
               for v, whole in zip(values, integral, strict=True)]
    elif kind in "iu":
        ids = [str(int(v)) for v in values]
    elif kind in "US":
        ids = [(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
               for v in values.tolist()]
    else:
        raise DataError(f"{source}: group ids must be numbers or text, got dtype {values.dtype}")
    empty = [i for i, v in enumerate(ids) if not v or v.lower() == "nan"]
    if empty:
        raise DataError(f"{source}: row {empty[0]}: empty or NaN group id")
    return np.array(ids, dtype=str)


def check_group_count(groups: np.ndarray, n: int, source: str, data: str) -> None:
    """Raise :class:`DataError` unless there is exactly one group id per spectrum."""
    if groups.shape != (n,):
        raise DataError(f"{source}: {groups.size} group ids but {data} has {n} spectra "
                        f"(one id per spectrum, in the data's order)")


def read_groups_file(path: str | Path) -> np.ndarray:
    """Group ids from ``path``: ``.npy`` (1-D numbers or text), or text with one id per line.

    In ``.csv``/``.tsv`` files a header row naming a ``group`` column selects that column;
    otherwise every non-blank line (``#`` comments skipped) is one id, whole.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such group file")
    if path.suffix.lower() == ".npy":
        return group_ids(load_npy(path), str(path))
    lines = [(n, line.strip()) for n, line in enumerate(read_text_lines(path), start=1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if not lines:
        raise DataError(f"{path}: no group ids (expected one id per line)")
    if path.suffix.lower() in (".csv", ".tsv"):
        lines = _group_column(lines, path)
    return group_ids(np.array([line for _, line in lines], dtype=str), str(path))


def _group_column(lines: list[tuple[int, str]], path: Path) -> list[tuple[int, str]]:
    """The ``group`` column of a delimited file with a header, else the lines as they are."""
    head_no, head = lines[0]
    delimiter = "\t" if "\t" in head else ";" if ";" in head else ","
    header = [c.strip().lower() for c in next(csv.reader([head], delimiter=delimiter))]
    if GROUP_COLUMN not in header:
        if len(header) > 1:
            raise DataError(f"{path}: line {head_no}: {len(header)} columns but no "
                            f"'{GROUP_COLUMN}' column in the header")
        return lines
    at = header.index(GROUP_COLUMN)
    out = []
    for n, line in lines[1:]:
        cells = next(csv.reader([line], delimiter=delimiter))
        if len(cells) != len(header):
            raise DataError(f"{path}: line {n}: {len(cells)} cells but the header has "
                            f"{len(header)}")
        if not cells[at].strip():
            raise DataError(f"{path}: line {n}: empty group id")
        out.append((n, cells[at].strip()))
    if not out:
        raise DataError(f"{path}: no group ids after the header")
    return out
