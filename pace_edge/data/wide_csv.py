"""Wide CSV: one spectrum per row, wavenumbers in the header, plus one label column.

::

    400,402.5,405,...,label,group
    0.12,0.13,0.11,...,Healthy,patient-07

The optional ``group`` column names the sample (or patient) each spectrum was measured on.

The delimiter is detected from the header (tab, else semicolon, else comma); with tab or
semicolon delimiters a decimal comma (``0,12``) is accepted. Lines starting with ``#`` and
blank lines are skipped. Classes are the sorted unique labels, in numeric order when every label
is an integer. A descending axis is reversed; duplicated or zig-zag wavenumbers are errors.
Messages name the file and the 1-based line number.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import SpectralDataset
from .groups import GROUP_COLUMN
from .spectrum_file import read_text_lines


def load_wide_csv(path: str | Path, label_column: str = "label") -> SpectralDataset:
    """Load a wide CSV file; see the module docstring for the layout."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = [
        (n, line)
        for n, line in enumerate(read_text_lines(path), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not rows:
        raise DataError(f"{path}: empty file (expected a header of wavenumbers and a label column)")
    (head_no, head_line), body = rows[0], rows[1:]
    delimiter = _sniff(head_line)
    decimal_comma = delimiter != ","
    header = _cells(head_line, delimiter, path, head_no)
    trailing = header[-1] == "" and len(header) > 1  # every line ends with a delimiter
    if trailing:
        header = header[:-1]
    label_at = _find_label(header, label_column, path, head_no)
    group_at = _find_group(header, label_at, path, head_no)
    text_columns = {label_at} if group_at is None else {label_at, group_at}
    axis = _parse_axis(header, text_columns, path, head_no, decimal_comma)
    if not body:
        raise DataError(f"{path}: no data rows after the header")
    x = np.empty((len(body), axis.size))
    labels: list[str] = []
    groups: list[str] = []
    for i, (lineno, line) in enumerate(body):
        cells = _cells(line, delimiter, path, lineno)
        if trailing and len(cells) == len(header) + 1 and cells[-1] == "":
            cells = cells[:-1]
        if len(cells) != len(header):
            raise DataError(
                f"{path}: line {lineno}: {len(cells)} cells but the header has {len(header)}"
            )
        labels.append(_label(cells[label_at], path, lineno))
        if group_at is not None:
            groups.append(_label(cells[group_at], path, lineno, "group id"))
        values = [c for j, c in enumerate(cells) if j not in text_columns]
        x[i] = _parse_row(values, axis, path, lineno, decimal_comma)
    classes, y = _encode(labels, path)
    if axis[-1] < axis[0]:
        axis, x = axis[::-1].copy(), np.ascontiguousarray(x[:, ::-1])
    names = [f"{path}: line {lineno}" for lineno, _ in body]
    return SpectralDataset(x, y, axis, classes, source=str(path), names=names,
                           groups=np.array(groups, dtype=str) if group_at is not None else None)


def _sniff(header: str) -> str:
    for delimiter in ("\t", ";"):
        if delimiter in header:
            return delimiter
    return ","


def _cells(line: str, delimiter: str, path: Path, lineno: int) -> list[str]:
    try:
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]
    except csv.Error as exc:
        raise DataError(f"{path}: line {lineno}: {exc}") from None


def _to_float(cell: str, decimal_comma: bool) -> float:
    """``float(cell)``, accepting ``0,5`` when the delimiter is not a comma; ValueError if not."""
    try:
        return float(cell)
    except ValueError:
        if decimal_comma and cell.count(",") == 1:
            return float(cell.replace(",", "."))
        raise


def _find_label(header: list[str], name: str, path: Path, lineno: int) -> int:
    hits = [j for j, c in enumerate(header) if c == name]
    if not hits:
        hits = [j for j, c in enumerate(header) if c.lower() == name.lower()]
    if not hits:
        raise DataError(
            f"{path}: line {lineno}: no label column {name!r} in the header "
            f"(pass label_column=... to name it)"
        )
    if len(hits) > 1:
        raise DataError(f"{path}: line {lineno}: label column {name!r} appears {len(hits)} times")
    return hits[0]


def _find_group(header: list[str], label_at: int, path: Path, lineno: int) -> int | None:
    """Index of the optional ``group`` column (any case), or ``None``."""
    hits = [j for j, c in enumerate(header) if c.lower() == GROUP_COLUMN and j != label_at]
    if len(hits) > 1:
        raise DataError(f"{path}: line {lineno}: group column appears {len(hits)} times")
    return hits[0] if hits else None


def _parse_axis(
    header: list[str], text_columns: set[int], path: Path, lineno: int, decimal_comma: bool
) -> np.ndarray:
    """The header's wavenumbers in file order, checked to be strictly monotonic."""
    columns = [j for j in range(len(header)) if j not in text_columns]
    values = []
    for j in columns:
        try:
            value = _to_float(header[j], decimal_comma)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            raise DataError(
                f"{path}: line {lineno}, column {j + 1}: header cell {header[j]!r} "
                f"is not a numeric wavenumber"
            )
        values.append(value)
    if len(values) < 2:
        raise DataError(f"{path}: line {lineno}: need at least 2 wavenumber columns")
    axis = np.array(values)
    d = np.diff(axis)
    bad = np.flatnonzero(d >= 0 if axis[-1] < axis[0] else d <= 0)
    if bad.size:
        k = int(bad[0])
        where = f"{path}: line {lineno}, column {columns[k + 1] + 1}"
        if d[k] == 0:
            raise DataError(
                f"{where}: duplicated wavenumber {axis[k]:g} (also column {columns[k] + 1})"
            )
        raise DataError(f"{where}: wavenumbers not monotonic ({axis[k]:g} then {axis[k + 1]:g})")
    return axis


def _parse_row(
    cells: list[str], axis: np.ndarray, path: Path, lineno: int, decimal_comma: bool
) -> np.ndarray:
    try:
        row = np.array(cells, dtype=np.float64)
    except ValueError:
        row = np.empty(len(cells))
        for j, cell in enumerate(cells):
            try:
                row[j] = _to_float(cell, decimal_comma)
            except ValueError:
                raise DataError(
                    f"{path}: line {lineno}, x={axis[j]:g}: value {cell!r} is not a number"
                ) from None
    bad = np.flatnonzero(~np.isfinite(row))
    if bad.size:
        j = int(bad[0])
        raise DataError(f"{path}: line {lineno}, x={axis[j]:g}: value {cells[j]!r} is not finite")
    return row


def _label(cell: str, path: Path, lineno: int, what: str = "label") -> str:
    if not cell:
        raise DataError(f"{path}: line {lineno}: empty {what}")
    if what == "group id" and cell.lower() == "nan":
        raise DataError(f"{path}: line {lineno}: group id is NaN")
    return cell


def _encode(labels: list[str], path: Path) -> tuple[list[str], np.ndarray]:
    """Class names and indices: numeric order if every label is an integer, else sorted text."""
    try:
        numbers = [int(s) for s in labels]
    except ValueError:
        classes = sorted(set(labels))
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[s] for s in labels], dtype=np.int64)
    else:
        values = sorted(set(numbers))
        classes = [str(v) for v in values]
        index = {v: i for i, v in enumerate(values)}
        y = np.array([index[v] for v in numbers], dtype=np.int64)
    if len(classes) < 2:
        raise DataError(f"{path}: only one class ({classes[0]!r}); need at least 2")
    return classes, y
