"""Spectral datasets: one loader module per on-disk format, plus splits and synthetic data.

Every loader returns a :class:`SpectralDataset` and reports user-caused problems as a
:class:`~pace_edge.errors.DataError` naming the file and row/line. No torch here.
"""

from __future__ import annotations

from .dataset import SpectralDataset
from .groups import read_groups_file
from .load import load_dataset
from .npy_folder import load_npy_folder, write_npy_folder
from .spectrum_file import read_spectrum_file
from .split import group_record, stratified_folds, stratified_split
from .synthetic import make_grouped_synthetic, make_synthetic
from .text_folder import load_text_folder
from .wide_csv import load_wide_csv

__all__ = [
    "SpectralDataset",
    "group_record",
    "load_dataset",
    "load_npy_folder",
    "load_text_folder",
    "load_wide_csv",
    "make_grouped_synthetic",
    "make_synthetic",
    "read_groups_file",
    "read_spectrum_file",
    "stratified_folds",
    "stratified_split",
    "write_npy_folder",
]
