"""Open any supported dataset by looking at what ``path`` is."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .dataset import SpectralDataset
from .groups import read_groups_file
from .npy_folder import check_split, load_npy_folder
from .text_folder import class_folders, load_text_folder
from .wide_csv import load_wide_csv

LAYOUTS = (
    "an npy folder (train_x.npy, train_y.npy, [test_x.npy, test_y.npy], wavenumbers.npy, "
    "[classes.json], [train_groups.npy, test_groups.npy]); a wide .csv/.tsv file (header of "
    "wavenumbers plus a 'label' and optional 'group' column, one spectrum per row); or a "
    "folder with one sub-folder of two-column spectrum files per class (optionally in one "
    "sub-sub-folder per sample)"
)
WIDE_SUFFIXES = (".csv", ".tsv")


def load_dataset(
    path: str | Path, split: str = "train", groups: str | Path | None = None
) -> SpectralDataset:
    """Load the dataset at ``path``, detecting its layout.

    ``split`` (``train``, ``test`` or ``all``) selects part of an npy folder; layouts without a
    built-in split return every spectrum whatever ``split`` is. ``groups`` names a file of
    group ids (one per spectrum, in the data's order; :func:`.groups.read_groups_file`) that
    replaces any group ids the layout holds.
    """
    data = _load(path, split)
    if groups is not None:
        data = data.with_groups(read_groups_file(groups), str(groups))
    return data


def _load(path: str | Path, split: str) -> SpectralDataset:
    check_split(split)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; expected {LAYOUTS}")
    if path.is_dir() and (path / "train_x.npy").is_file():
        return load_npy_folder(path, split)
    if path.is_file() and path.suffix.lower() in WIDE_SUFFIXES:
        return load_wide_csv(path)
    if path.is_dir() and class_folders(path):
        return load_text_folder(path)
    raise DataError(f"{path}: unrecognised dataset layout; expected {LAYOUTS}")
