"""One spectrum per file: two-column text (x, intensity) or a ``.npy`` array.

Text files (``.txt``, ``.csv``, ``.tsv``, ``.dat``) hold one point per line, with x and
intensity separated by a comma, semicolon, tab or whitespace. Lines starting with ``#`` and
non-numeric lines before the first data line (headers such as RRUFF's ``##NAMES=`` or an
instrument's ``Raman Shift,Intensity``) are skipped. ``.npy`` files hold either intensities
alone (1-D, no axis) or x and intensity as a ``(2, n)`` or ``(n, 2)`` array.

Spectra stored in descending x order are reversed; duplicated or non-monotonic x is an error.

:func:`read_spectra` also reads batches, ``(N, points)`` ``.npy`` arrays, for a model whose
input length is known (the rules are in its docstring).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError

TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".dat")
SPECTRUM_SUFFIXES = (*TEXT_SUFFIXES, ".npy")

_SPLIT = re.compile(r"[,\s]+")
_SPLIT_STRONG = re.compile(r"[;\t]+")  # with these, a comma is a decimal comma


def is_spectrum_file(path: Path) -> bool:
    """Whether ``path`` has a suffix :func:`read_spectrum_file` accepts (hidden files excluded)."""
    return path.suffix.lower() in SPECTRUM_SUFFIXES and not path.name.startswith(".")


def read_spectrum_file(path: str | Path) -> tuple[np.ndarray | None, np.ndarray]:
    """Read one spectrum; returns ``(axis, intensity)`` with ``axis`` increasing, or ``None``.

    ``axis`` is ``None`` only for a 1-D ``.npy`` file (intensities without x values).
    Raises :class:`DataError` naming the file (and line, for text) on any problem.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a spectrum file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in TEXT_SUFFIXES:
        return _read_text(path)
    raise DataError(
        f"{path}: unsupported spectrum file type {suffix or '(none)'!r}; "
        f"accepted: {', '.join(SPECTRUM_SUFFIXES)}"
    )


def read_spectra(
    path: str | Path, points: int, axis: np.ndarray | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """Read one spectrum or a batch for a model; returns ``(axis, spectra (n, length))``.

    ``points`` is the length of the axis that intensities without x values are on (the model's
    input axis, or one given by the user), ``axis`` that axis if known. Text files hold one
    spectrum (x, intensity). A ``.npy`` array is read by these rules, in order:

    1. 1-D: one spectrum of intensities, which must have ``points`` values (axis ``None``);
    2. 2-D with ``points`` columns: a batch, one spectrum of intensities per row, even when
       it has 2 rows, except a ``(2, points)`` array whose first row *is* ``axis``
       (x then intensity);
    3. ``(n, 2)`` or ``(2, n)`` with ``n != points``: x and intensity of one spectrum (x must
       be strictly monotonic);
    4. anything else is refused, saying what was expected.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy" or not path.is_file():
        x, y = read_spectrum_file(path)
        return x, y[None, :]
    arr = load_npy(path)
    if arr.ndim == 1:
        if arr.size != points:
            raise DataError(
                f"{path}: {arr.size} intensities without an axis; the model expects {points} "
                "points on its axis (give --axis for another axis, or save x and intensity "
                "as a (2, n) array)"
            )
        return None, _check_values(arr, path)[None, :]
    if arr.ndim == 2 and arr.shape[1] == points:
        spectra = _check_values(arr, path)
        if (len(spectra) == 2 and axis is not None
                and np.allclose(spectra[0], axis, rtol=1e-6, atol=1e-9)):
            x, y = _order_axis(spectra[0], spectra[1], path, None)
            return x, y[None, :]
        if not len(spectra):
            raise DataError(f"{path}: an empty batch (0 spectra of {points} points)")
        return None, spectra
    if arr.ndim == 2 and 2 in arr.shape:
        x, y = _read_npy(path)
        return x, y[None, :]
    raise DataError(
        f"{path}: got shape {arr.shape}; expected {points} intensities, an (N, {points}) "
        "batch, or a (2, n) / (n, 2) array of x and intensity"
    )


def read_text_lines(path: Path) -> list[str]:
    """The lines of a text file (UTF-8, with or without BOM, else Latin-1)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if b"\x00" in raw:
        raise DataError(f"{path}: not a text file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def _split_line(line: str) -> list[str]:
    """Cells of a data line: tab/semicolon separated (decimal comma allowed), else comma/space."""
    if "\t" in line or ";" in line:
        cells = [c.strip().replace(",", ".") for c in _SPLIT_STRONG.split(line)]
    else:
        cells = _SPLIT.split(line)
    return [c for c in cells if c]


def _parse_numbers(cells: list[str]) -> list[float] | None:
    try:
        return [float(c) for c in cells]
    except ValueError:
        return None


def _read_text(path: Path) -> tuple[np.ndarray, np.ndarray]:
    xs: list[float] = []
    ys: list[float] = []
    lines: list[int] = []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        values = _parse_numbers(_split_line(stripped))
        if values is None:
            if not xs:
                continue  # header line before the data
            raise DataError(f"{path}: line {lineno}: non-numeric value in {stripped[:60]!r}")
        if len(values) != 2:
            raise DataError(
                f"{path}: line {lineno}: expected 2 columns (x, intensity), got {len(values)}"
            )
        if not all(np.isfinite(values)):
            raise DataError(f"{path}: line {lineno}: NaN or infinite value in {stripped[:60]!r}")
        xs.append(values[0])
        ys.append(values[1])
        lines.append(lineno)
    if not xs:
        raise DataError(f"{path}: no numeric data lines (expected two columns: x, intensity)")
    return _order_axis(np.array(xs), np.array(ys), path, lines)


def _read_npy(path: Path) -> tuple[np.ndarray | None, np.ndarray]:
    arr = load_npy(path)
    if arr.ndim == 1:
        return None, _check_values(arr, path)
    if arr.ndim == 2 and 2 in arr.shape:
        pairs = arr if arr.shape[1] == 2 else arr.T  # (n, 2): one (x, intensity) per row
        x, y = _check_values(pairs[:, 0], path), _check_values(pairs[:, 1], path)
        return _order_axis(x, y, path, None)
    raise DataError(
        f"{path}: expected a 1-D intensity array or a (2, n) / (n, 2) array of x and intensity, "
        f"got shape {arr.shape}"
    )


def load_npy(path: Path) -> np.ndarray:
    """``np.load`` without pickles; any failure becomes a :class:`DataError` naming the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive under a .npy name
        arr.close()
        raise DataError(f"{path}: expected a single .npy array, got an .npz archive")
    return arr


def _check_values(values: np.ndarray, path: Path) -> np.ndarray:
    if values.dtype.kind not in "biuf":
        raise DataError(f"{path}: expected numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        where = (f"index {bad[0][0]}" if values.ndim == 1
                 else f"spectrum {bad[0][0]}, point {bad[0][1]}")
        raise DataError(f"{path}: NaN or infinite value at {where}")
    return values


def _order_axis(
    x: np.ndarray, y: np.ndarray, path: Path, lines: list[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)`` in increasing x; reject fewer than 2 points, duplicated or zig-zag x."""
    if x.size < 2:
        raise DataError(f"{path}: only {x.size} data point(s); need at least 2")
    descending = x[-1] < x[0]
    d = np.diff(x)
    bad = np.flatnonzero(d >= 0 if descending else d <= 0)
    if bad.size:
        j = int(bad[0])
        if lines:
            a, b = f"line {lines[j]}", f"line {lines[j + 1]}"
        else:
            a, b = f"point {j}", f"point {j + 1}"
        if d[j] == 0:
            raise DataError(f"{path}: {b}: duplicated x value {x[j]:g} (also at {a})")
        order = "descending" if descending else "ascending"
        raise DataError(
            f"{path}: {b}: x is not monotonic ({x[j]:g} then {x[j + 1]:g} in {order} data)"
        )
    if descending:
        return x[::-1].copy(), y[::-1].copy()
    return x, y
