"""The PACE authors' NumPy folder layout.

::

    train_x.npy   (n, length) intensities      test_x.npy   (m, length)
    train_y.npy   (n,) labels 0..k-1           test_y.npy   (m,)
    wavenumbers.npy  (length,)                 classes.json {"0": "Healthy", "1": ...}
    [train_groups.npy (n,) sample ids]         [test_groups.npy (m,)]

Labels may be stored as floats (``0.0, 1.0, ...``) but must be integral. ``classes.json`` is
optional (class names default to the label numbers) and holds either an object mapping each
label to its name or a list of names in label order (``["Healthy", "Sick"]``). The optional
``*_groups.npy`` files name the sample (or patient) of each spectrum, as numbers or text;
``groups.npy`` is read as ``train_groups.npy``. Row numbers in messages are 0-based array
indices, as in ``train_x[12]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError, PaceEdgeError
from .dataset import SpectralDataset, check_axis
from .groups import check_group_count, group_ids
from .spectrum_file import load_npy

SPLITS = ("train", "test", "all")
AXIS_FILE = "wavenumbers.npy"
CLASSES_FILE = "classes.json"
GROUPS_ALIAS = "groups.npy"  # read as the train split's groups


def check_split(split: str) -> None:
    """Raise :class:`PaceEdgeError` unless ``split`` is ``train``, ``test`` or ``all``."""
    if split not in SPLITS:
        raise PaceEdgeError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def load_npy_folder(path: str | Path, split: str = "train") -> SpectralDataset:
    """Load ``split`` (``train``, ``test`` or ``all`` = train then test) from an npy folder."""
    check_split(split)
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory (expected an npy dataset folder)")
    parts = ["train", "test"] if split == "all" else [split]
    if split == "all" and not (path / "test_x.npy").exists():
        parts = ["train"]
    axis = _load_axis(path)
    loaded = [_load_part(path, part, axis.size) for part in parts]
    classes = _load_classes(path)
    for part, (_, y, _) in zip(parts, loaded, strict=True):
        _check_labels(y, len(classes), path / f"{part}_y.npy")
    x = np.concatenate([x for x, _, _ in loaded])
    y = np.concatenate([y for _, y, _ in loaded])
    names = [n for _, _, part_names in loaded for n in part_names]
    groups = _load_groups(path, parts, [y.size for _, y, _ in loaded])
    if axis.size > 1 and axis[-1] < axis[0]:  # stored in descending order: flip once, here
        axis, x = axis[::-1].copy(), np.ascontiguousarray(x[:, ::-1])
    check_axis(axis, x.shape[1], str(path / AXIS_FILE))
    return SpectralDataset(x, y, axis, classes, source=f"{path} ({split})", names=names,
                           groups=groups)


def groups_file(folder: Path, part: str) -> Path | None:
    """The group-id file of ``part`` (``train`` or ``test``) in ``folder``, or ``None``."""
    file = folder / f"{part}_groups.npy"
    alias = folder / GROUPS_ALIAS
    if part == "train" and alias.is_file():
        if file.is_file():
            raise DataError(f"{folder}: both {GROUPS_ALIAS} and {file.name} exist; keep one "
                            f"({GROUPS_ALIAS} is read as {file.name})")
        return alias
    return file if file.is_file() else None


def _load_groups(folder: Path, parts: list[str], sizes: list[int]) -> np.ndarray | None:
    """Group ids of ``parts`` concatenated, or ``None`` unless every part has a groups file."""
    files = [groups_file(folder, part) for part in parts]
    if any(f is None for f in files):
        return None
    loaded = []
    for file, part, n in zip(files, parts, sizes, strict=True):
        assert file is not None
        ids = group_ids(load_npy(file), str(file))
        check_group_count(ids, n, str(file), f"{part}_x.npy")
        loaded.append(ids)
    return np.concatenate(loaded)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing (npy dataset folders need {path.name})")
    return path


def _load_axis(folder: Path) -> np.ndarray:
    file = _require(folder / AXIS_FILE)
    axis = load_npy(file)
    if axis.ndim != 1 or axis.dtype.kind not in "iuf":
        raise DataError(f"{file}: expected a 1-D numeric array, got {axis.dtype} {axis.shape}")
    return axis.astype(np.float64)


def _load_part(folder: Path, part: str, length: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    x_file, y_file = _require(folder / f"{part}_x.npy"), _require(folder / f"{part}_y.npy")
    x, y = load_npy(x_file), load_npy(y_file)
    if x.ndim != 2 or x.dtype.kind not in "iuf":
        raise DataError(f"{x_file}: expected a 2-D numeric array, got {x.dtype} {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{x_file}: no spectra")
    if x.shape[1] != length:
        raise DataError(f"{x_file}: spectra have {x.shape[1]} points but {AXIS_FILE} has {length}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{y_file}: expected {x.shape[0]} labels (one per row), got {y.shape}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise DataError(f"{x_file}: row {bad[0]}: NaN or infinite intensity")
    return (
        x.astype(np.float64),
        _integral_labels(y, y_file),
        [f"{x_file}: row {i}" for i in range(x.shape[0])],
    )


def _integral_labels(y: np.ndarray, file: Path) -> np.ndarray:
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise DataError(f"{file}: labels must be integers 0..k-1, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise DataError(f"{file}: row {bad[0]}: label {y[bad[0]]} is not an integer")
    return y.astype(np.int64)


def _check_labels(y: np.ndarray, n_classes: int, file: Path) -> None:
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{file}: row {i}: label {y[i]} outside 0..{n_classes - 1} "
            f"({n_classes} classes; see {CLASSES_FILE})"
        )


def _load_classes(folder: Path) -> list[str]:
    """Class names from ``classes.json``, else the label numbers found in every ``*_y.npy``."""
    file = folder / CLASSES_FILE
    if not file.exists():
        labels = [
            _integral_labels(load_npy(f), f)
            for f in (folder / "train_y.npy", folder / "test_y.npy")
            if f.is_file()
        ]
        n = max(int(y.max()) for y in labels if y.size) + 1
        if n < 2:
            raise DataError(
                f"{folder}: every label is 0 and there is no {CLASSES_FILE}; need 2+ classes"
            )
        return [str(i) for i in range(n)]
    try:
        mapping = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: not readable JSON ({exc})") from None
    if isinstance(mapping, list):
        return _class_list(mapping, file)
    if not isinstance(mapping, dict) or not mapping:
        raise DataError(f'{file}: expected an object like {{"0": "Healthy", "1": "Sick"}} or '
                        f'a list of names in label order like ["Healthy", "Sick"]')
    expected = [str(i) for i in range(len(mapping))]
    if sorted(mapping, key=lambda k: (len(k), k)) != expected:
        raise DataError(
            f"{file}: keys must be the labels 0..{len(mapping) - 1}, got {sorted(mapping)}"
        )
    names = [mapping[k] for k in expected]
    return _class_list(names, file)


def _class_list(names: list[object], file: Path) -> list[str]:
    """Check class names (text, non-empty, distinct) listed in label order."""
    if not names:
        raise DataError(f'{file}: empty list; expected class names in label order like '
                        f'["Healthy", "Sick"]')
    for i, name in enumerate(names):
        if not isinstance(name, (str, int, float)) or isinstance(name, bool) \
                or not str(name).strip():
            raise DataError(f"{file}: class name for label {i} must be non-empty text, "
                            f"got {json.dumps(name)}")
    text = [str(n) for n in names]
    seen: dict[str, int] = {}
    for i, name in enumerate(text):
        if name in seen:
            raise DataError(f"{file}: class name {name!r} is given to labels {seen[name]} and {i}")
        seen[name] = i
    return text


def write_npy_folder(
    path: str | Path, train: SpectralDataset, test: SpectralDataset | None = None
) -> Path:
    """Write ``train`` (and ``test``) in the npy folder layout; returns the folder.

    Labels are written as int64, group ids (when the data have them) as text. Without
    ``test``, stale ``test_*.npy`` files are removed so the folder always describes exactly
    the data given.
    """
    path = Path(path)
    if test is not None and (
        test.classes != train.classes or not np.array_equal(test.axis, train.axis)
    ):
        raise DataError(f"{test.source}: test set must share the train set's axis and classes")
    path.mkdir(parents=True, exist_ok=True)
    np.save(path / AXIS_FILE, train.axis.astype(np.float64))
    mapping = {str(i): c for i, c in enumerate(train.classes)}
    (path / CLASSES_FILE).write_text(json.dumps(mapping, indent=1) + "\n", encoding="utf-8")
    (path / GROUPS_ALIAS).unlink(missing_ok=True)
    for part, data in (("train", train), ("test", test)):
        if data is None or data.groups is None:
            (path / f"{part}_groups.npy").unlink(missing_ok=True)
        if data is None:
            for suffix in ("x", "y"):
                (path / f"{part}_{suffix}.npy").unlink(missing_ok=True)
            continue
        np.save(path / f"{part}_x.npy", data.x.astype(np.float64))
        np.save(path / f"{part}_y.npy", data.y.astype(np.int64))
        if data.groups is not None:
            np.save(path / f"{part}_groups.npy", data.groups.astype(str))
    return path
