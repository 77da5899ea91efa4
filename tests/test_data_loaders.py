"""Loaders: one happy path per format, and one test per user error (message names file + row)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pace_edge.data import (
    SpectralDataset,
    load_dataset,
    load_npy_folder,
    load_text_folder,
    load_wide_csv,
    read_spectrum_file,
    write_npy_folder,
)
from pace_edge.errors import DataError, PaceEdgeError

COV = Path(__file__).parents[1].parent / "shared" / "datasets" / "cov"
needs_cov = pytest.mark.skipif(
    not COV.is_dir(), reason=f"real COVID-19 Raman data not found at {COV} (../shared/datasets)"
)


def small_dataset(n: int = 6, length: int = 5, seed: int = 0) -> SpectralDataset:
    rng = np.random.default_rng(seed)
    return SpectralDataset(
        rng.normal(size=(n, length)),
        np.arange(n) % 3,
        np.linspace(400.0, 800.0, length),
        ["Healthy", "Suspected", "COVID-19"],
    )


# --- npy folder -------------------------------------------------------------------------------


def test_npy_folder_round_trip(tmp_path: Path) -> None:
    train, test = small_dataset(6), small_dataset(3, seed=1)
    write_npy_folder(tmp_path, train, test)
    got = load_npy_folder(tmp_path)
    np.testing.assert_array_equal(got.x, train.x)
    np.testing.assert_array_equal(got.y, train.y)
    np.testing.assert_array_equal(got.axis, train.axis)
    assert got.classes == ["Healthy", "Suspected", "COVID-19"]
    assert len(load_npy_folder(tmp_path, "test")) == 3
    both = load_npy_folder(tmp_path, "all")
    assert len(both) == 9 and both.names[6].endswith("test_x.npy: row 0")


def test_npy_folder_float_labels_and_default_classes(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset())
    np.save(tmp_path / "train_y.npy", np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0]))
    (tmp_path / "classes.json").unlink()
    got = load_npy_folder(tmp_path)
    assert got.y.dtype == np.int64 and got.classes == ["0", "1", "2"]


def test_npy_folder_rejects_fractional_label(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset())
    np.save(tmp_path / "train_y.npy", np.array([0.0, 1.0, 2.0, 0.5, 1.0, 2.0]))
    with pytest.raises(DataError, match=r"train_y\.npy: row 3: label 0\.5 is not an integer"):
        load_npy_folder(tmp_path)


def test_npy_folder_rejects_label_outside_classes(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset())
    np.save(tmp_path / "train_y.npy", np.array([0, 1, 2, 3, 1, 2]))
    with pytest.raises(DataError, match=r"train_y\.npy: row 3: label 3 outside 0\.\.2"):
        load_npy_folder(tmp_path)


def test_npy_folder_rejects_missing_file_pickles_and_bad_split(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset())
    with pytest.raises(DataError, match=r"test_x\.npy: missing"):
        load_npy_folder(tmp_path, "test")
    with pytest.raises(PaceEdgeError, match="unknown split"):
        load_npy_folder(tmp_path, "validation")
    np.save(tmp_path / "train_x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"train_x\.npy: not a readable"):
        load_npy_folder(tmp_path)


def test_npy_folder_rejects_nan_row(tmp_path: Path) -> None:
    data = small_dataset()
    write_npy_folder(tmp_path, data)
    x = data.x.copy()
    x[4, 2] = np.nan
    np.save(tmp_path / "train_x.npy", x)
    with pytest.raises(DataError, match=r"train_x\.npy: row 4: NaN"):
        load_npy_folder(tmp_path)


@needs_cov
def test_real_cov_folder() -> None:
    train = load_npy_folder(COV)
    assert train.x.shape == (372, 900)
    assert train.classes == ["Healthy", "Suspected", "COVID-19"]
    assert len(load_npy_folder(COV, "test")) == 93
    assert len(load_dataset(COV, "all")) == 465


# --- wide CSV -------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_wide_csv_comma_string_labels(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.csv",
        '# exported spectra\n400,label,500,600\n1,b,2,3\n4,a,5,6\n\n7,"b",8,9\n',
    )
    got = load_wide_csv(f)
    assert got.classes == ["a", "b"]
    np.testing.assert_array_equal(got.y, [1, 0, 1])
    np.testing.assert_array_equal(got.x[2], [7, 8, 9])
    assert got.names[2] == f"{f}: line 6"


def test_wide_csv_semicolon_decimal_comma_descending_int_labels(tmp_path: Path) -> None:
    f = write(tmp_path / "s.csv", "600,5;500;400;Class\n1,5;2;3;10\n4;5;6;2\n")
    got = load_wide_csv(f, label_column="class")
    assert got.classes == ["2", "10"]  # numeric order, not text order
    np.testing.assert_array_equal(got.axis, [400, 500, 600.5])
    np.testing.assert_array_equal(got.x, [[3, 2, 1.5], [6, 5, 4]])
    np.testing.assert_array_equal(got.y, [1, 0])


def test_wide_csv_tab(tmp_path: Path) -> None:
    got = load_wide_csv(write(tmp_path / "s.csv", "label\t1.5\t2.5\nx\t1\t2\ny\t3\t4\n"))
    assert got.x.shape == (2, 2) and got.classes == ["x", "y"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty file"),
        ("400,500,600\n1,2,3\n", r"line 1: no label column 'label'"),
        ("400,abc,label\n1,2,a\n2,3,b\n", r"line 1, column 2: header cell 'abc' is not numeric"),
        ("400,500,label\n1,2,a\n1,2,3,b\n", r"line 3: 4 cells but the header has 3"),
        ("400,500,label\n1,2,a\n1,x,b\n", r"line 3, x=500: value 'x' is not a number"),
        ("400,500,label\n1,2,a\n1,nan,b\n", r"line 3, x=500: value 'nan' is not finite"),
        ("400,500,label\n1,inf,a\n1,2,b\n", r"line 2, x=500: value 'inf' is not finite"),
        ("400,600,500,label\n1,2,3,a\n1,2,3,b\n", r"line 1, column 3: .*not monotonic"),
        ("400,500,500,label\n1,2,3,a\n1,2,3,b\n", r"line 1, column 3: duplicated wavenumber 500"),
        ("400,500,label\n1,2,a\n3,4,a\n", r"only one class \('a'\)"),
        ("400,500,label\n", "no data rows"),
        ("400,500,label\n1,2,\n", r"line 2: empty label"),
    ],
)
def test_wide_csv_rejects(tmp_path: Path, text: str, pattern: str) -> None:
    f = write(tmp_path / "bad.csv", text)
    pattern = pattern.replace("is not numeric", "is not a numeric wavenumber")
    with pytest.raises(DataError, match=pattern) as err:
        load_wide_csv(f)
    assert str(err.value).startswith(f"{f}:")


# --- single spectrum files and text folders -------------------------------------------------

RRUFF = "##NAMES=Quartz\n##LOCALITY=somewhere\n{rows}##END=\n"


def spectrum_text(x: np.ndarray, y: np.ndarray, sep: str = ",", header: str = "") -> str:
    return header + "".join(f"{a:g}{sep}{b:g}\n" for a, b in zip(x, y, strict=True))


def test_read_spectrum_file_text_and_npy(tmp_path: Path) -> None:
    x = np.array([100.0, 200.0, 300.0])
    y = np.array([1.0, 2.0, 3.0])
    f = write(tmp_path / "a.txt", RRUFF.format(rows=spectrum_text(x[::-1], y[::-1], ", ")))
    got_x, got_y = read_spectrum_file(f)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    np.save(tmp_path / "b.npy", np.stack([x, y]))  # (2, n)
    np.save(tmp_path / "c.npy", np.stack([x, y], axis=1))  # (n, 2)
    for name in ("b.npy", "c.npy"):
        got_x, got_y = read_spectrum_file(tmp_path / name)
        np.testing.assert_array_equal(got_x, x)
        np.testing.assert_array_equal(got_y, y)
    np.save(tmp_path / "d.npy", y)
    got_x, got_y = read_spectrum_file(tmp_path / "d.npy")
    assert got_x is None and np.array_equal(got_y, y)


def test_read_spectrum_file_semicolon_decimal_comma(tmp_path: Path) -> None:
    f = write(tmp_path / "eu.csv", "Raman Shift (cm-1);Intensität\n100,5;1,25\n200,5;2\n")
    got_x, got_y = read_spectrum_file(f)
    np.testing.assert_array_equal(got_x, [100.5, 200.5])
    np.testing.assert_array_equal(got_y, [1.25, 2.0])


@pytest.mark.parametrize(
    ("name", "text", "pattern"),
    [
        ("dup.txt", "Raman shift\tCounts\n100\t1\n200\t2\n200\t3\n", r"line 4: duplicated x"),
        ("zig.txt", "100 1\n200 2\n150 3\n", r"line 3: x is not monotonic"),
        ("empty.txt", "", "no numeric data lines"),
        ("one.txt", "100\n200\n", r"line 1: expected 2 columns"),
        ("late.txt", "100,1\nabc,2\n", r"line 2: non-numeric"),
        ("nan.csv", "100,1\n200,nan\n", r"line 2: NaN"),
        ("x.spc", "100,1\n", "unsupported spectrum file type"),
    ],
)
def test_read_spectrum_file_rejects(tmp_path: Path, name: str, text: str, pattern: str) -> None:
    f = write(tmp_path / name, text)
    with pytest.raises(DataError, match=pattern) as err:
        read_spectrum_file(f)
    assert str(err.value).startswith(f"{f}:")


def make_text_folder(root: Path) -> Path:
    (root / "B").mkdir(parents=True)
    (root / "A").mkdir()
    fine = np.linspace(100.0, 1000.0, 91)
    write(root / "A" / "one.txt", spectrum_text(fine, fine / 10, "\t", "# instrument export\n"))
    write(root / "A" / "two.csv", spectrum_text(fine[::-1], fine[::-1] / 5, ",", "x,y\n"))
    coarse = np.linspace(50.0, 900.0, 86)
    write(root / "B" / "three.dat", RRUFF.format(rows=spectrum_text(coarse, coarse, "  ")))
    write(root / "notes.md", "not a spectrum")
    return root


def test_text_folder_common_axis(tmp_path: Path) -> None:
    got = load_text_folder(make_text_folder(tmp_path / "data"))
    assert got.classes == ["A", "B"]
    np.testing.assert_array_equal(got.y, [0, 0, 1])
    assert got.axis[0] == 100.0 and got.axis[-1] == 900.0
    assert got.axis.size == 81  # median number of points inside 100..900
    np.testing.assert_allclose(got.x[0], got.axis / 10)
    np.testing.assert_allclose(got.x[1], got.axis / 5)
    np.testing.assert_allclose(got.x[2], got.axis)
    assert got.names[2].endswith("three.dat")


def test_text_folder_given_axis_and_coverage(tmp_path: Path) -> None:
    root = make_text_folder(tmp_path / "data")
    got = load_text_folder(root, axis=np.array([200.0, 300.0, 400.0]))
    np.testing.assert_allclose(got.x[2], [200, 300, 400])
    with pytest.raises(DataError, match=r"one\.txt: covers x 100\.\.1000, not the common axis"):
        load_text_folder(root, axis=np.linspace(50.0, 500.0, 10))


def test_text_folder_rejects_bad_file_and_single_class(tmp_path: Path) -> None:
    root = make_text_folder(tmp_path / "data")
    write(root / "B" / "bad.txt", "100 1\n100 2\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 2: duplicated x value 100"):
        load_text_folder(root)
    solo = tmp_path / "solo" / "A"
    solo.mkdir(parents=True)
    with pytest.raises(DataError, match="need at least 2"):
        load_text_folder(solo.parent)


# --- autodetection ---------------------------------------------------------------------------


def test_load_dataset_detects_each_layout(tmp_path: Path) -> None:
    write_npy_folder(tmp_path / "npy", small_dataset(), small_dataset(3))
    assert len(load_dataset(tmp_path / "npy", "test")) == 3
    csv = write(tmp_path / "w.csv", "400,500,label\n1,2,a\n3,4,b\n")
    assert len(load_dataset(csv, "test")) == 2  # no built-in split: everything
    assert load_dataset(make_text_folder(tmp_path / "txt")).classes == ["A", "B"]


def test_load_dataset_rejects_unknown_layouts(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or directory; expected an npy folder"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="unrecognised dataset layout"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="wide .csv"):
        load_dataset(write(tmp_path / "x.json", json.dumps({})))


# --- classes.json as a list ------------------------------------------------------------------


def test_classes_json_may_be_a_list_in_label_order(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset())
    write(tmp_path / "classes.json", '["Healthy", "Suspected", "COVID-19"]')
    assert load_npy_folder(tmp_path).classes == ["Healthy", "Suspected", "COVID-19"]


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("[]", "empty list; expected class names in label order"),
        ('["Healthy", "Healthy", "COVID-19"]', "'Healthy' is given to labels 0 and 1"),
        ('["Healthy", null, "COVID-19"]', "class name for label 1 must be non-empty text"),
        ('["Healthy", ""]', "class name for label 1 must be non-empty text"),
        ('"Healthy"', r'or a list of names in label order like \["Healthy", "Sick"\]'),
        ('["a", "b"]', r"train_y\.npy: row 2: label 2 outside 0\.\.1"),  # too few names
    ],
)
def test_classes_json_list_errors(tmp_path: Path, text: str, pattern: str) -> None:
    write_npy_folder(tmp_path, small_dataset())
    write(tmp_path / "classes.json", text)
    with pytest.raises(DataError, match=pattern) as exc:
        load_npy_folder(tmp_path)
    assert "\n" not in str(exc.value)


# --- group ids (samples, patients) -------------------------------------------------------------


def test_npy_folder_groups_per_split(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset(6), small_dataset(3, seed=1))
    np.save(tmp_path / "train_groups.npy", np.array([1, 1, 2, 2, 3, 3]))
    got = load_npy_folder(tmp_path)
    assert list(got.groups) == ["1", "1", "2", "2", "3", "3"] and got.n_groups == 3
    assert load_npy_folder(tmp_path, "test").groups is None  # no test_groups.npy
    assert load_npy_folder(tmp_path, "all").groups is None  # only when every part has them
    np.save(tmp_path / "test_groups.npy", np.array(["p9", "p9", "p8"]))
    assert list(load_npy_folder(tmp_path, "test").groups) == ["p9", "p9", "p8"]
    assert load_npy_folder(tmp_path, "all").n_groups == 5
    sub = load_npy_folder(tmp_path).subset(np.array([0, 5]))
    assert list(sub.groups) == ["1", "3"]
    # written back out, the groups survive
    write_npy_folder(tmp_path / "copy", load_npy_folder(tmp_path),
                     load_npy_folder(tmp_path, "test"))
    assert list(load_npy_folder(tmp_path / "copy", "test").groups) == ["p9", "p9", "p8"]


def test_npy_folder_groups_alias_and_errors(tmp_path: Path) -> None:
    write_npy_folder(tmp_path, small_dataset(6))
    np.save(tmp_path / "groups.npy", np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0]))
    assert list(load_npy_folder(tmp_path).groups) == ["1", "1", "2", "2", "3", "3"]
    np.save(tmp_path / "train_groups.npy", np.arange(6))
    with pytest.raises(DataError, match="both groups.npy and train_groups.npy exist"):
        load_npy_folder(tmp_path)
    (tmp_path / "groups.npy").unlink()
    np.save(tmp_path / "train_groups.npy", np.arange(5))
    with pytest.raises(DataError, match=r"train_groups\.npy: 5 group ids but train_x\.npy has "
                                        r"6 spectra"):
        load_npy_folder(tmp_path)
    np.save(tmp_path / "train_groups.npy", np.array([1.0, 1.0, np.nan, 2.0, 3.0, 3.0]))
    with pytest.raises(DataError, match=r"train_groups\.npy: row 2: group id is nan"):
        load_npy_folder(tmp_path)
    np.save(tmp_path / "train_groups.npy", np.array(["a", "a", " ", "b", "c", "c"]))
    with pytest.raises(DataError, match=r"train_groups\.npy: row 2: empty or NaN group id"):
        load_npy_folder(tmp_path)


def test_wide_csv_group_column(tmp_path: Path) -> None:
    f = write(tmp_path / "s.csv", "400,500,label,Group\n1,2,a,p1\n3,4,b,p2\n5,6,a,p1\n")
    got = load_wide_csv(f)
    np.testing.assert_array_equal(got.axis, [400.0, 500.0])
    np.testing.assert_array_equal(got.x, [[1, 2], [3, 4], [5, 6]])
    assert list(got.groups) == ["p1", "p2", "p1"]
    assert load_wide_csv(write(tmp_path / "n.csv", "400,500,label\n1,2,a\n3,4,b\n")).groups is None
    with pytest.raises(DataError, match=r"e\.csv: line 3: empty group id"):
        load_wide_csv(write(tmp_path / "e.csv", "400,500,label,group\n1,2,a,p1\n3,4,b,\n"))
    with pytest.raises(DataError, match=r"m\.csv: line 2: group id is NaN"):
        load_wide_csv(write(tmp_path / "m.csv", "400,500,label,group\n1,2,a,NaN\n3,4,b,p\n"))


def test_text_folder_sample_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "data"
    x = np.linspace(100.0, 1000.0, 50)
    for cls, sample, name in [("A", "p1", "a.txt"), ("A", "p1", "b.txt"), ("A", "p2", "c.txt"),
                              ("B", "p1", "d.txt"), ("B", "p3", "e.txt")]:
        (root / cls / sample).mkdir(parents=True, exist_ok=True)
        write(root / cls / sample / name, spectrum_text(x, x))
    got = load_text_folder(root)
    np.testing.assert_array_equal(got.y, [0, 0, 0, 1, 1])
    # ids include the class folder: A/p1 and B/p1 are different samples
    assert list(got.groups) == ["A/p1", "A/p1", "A/p2", "B/p1", "B/p3"]
    assert load_text_folder(make_text_folder(tmp_path / "flat")).groups is None


def test_text_folder_sample_subfolder_errors(tmp_path: Path) -> None:
    root = tmp_path / "data"
    x = np.linspace(100.0, 1000.0, 50)
    (root / "A" / "p1").mkdir(parents=True)
    (root / "B").mkdir()
    write(root / "A" / "p1" / "a.txt", spectrum_text(x, x))
    write(root / "B" / "b.txt", spectrum_text(x, x))
    with pytest.raises(DataError, match=r"B: spectrum files directly in the class folder, but "
                                        r"other classes hold sample sub-folders"):
        load_text_folder(root)
    write(root / "A" / "loose.txt", spectrum_text(x, x))
    with pytest.raises(DataError, match=r"A: holds both spectrum files \(loose\.txt\) and "
                                        r"sample sub-folders \(p1\)"):
        load_text_folder(root)
    (root / "A" / "loose.txt").unlink()
    (root / "B" / "p2").mkdir()
    (root / "B" / "b.txt").unlink()
    with pytest.raises(DataError, match=r"p2: sample folder without spectrum files"):
        load_text_folder(root)


def test_groups_file_formats(tmp_path: Path) -> None:
    from pace_edge.data import read_groups_file

    assert list(read_groups_file(write(tmp_path / "g.txt", "# ids\np1\np1\n\np2\n"))) == [
        "p1", "p1", "p2"]
    csv = write(tmp_path / "g.csv", "spectrum,group\n0,p1\n1,p2\n")
    assert list(read_groups_file(csv)) == ["p1", "p2"]
    np.save(tmp_path / "g.npy", np.array([7, 7, 8]))
    assert list(read_groups_file(tmp_path / "g.npy")) == ["7", "7", "8"]


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("empty.txt", "# nothing\n\n", r"empty\.txt: no group ids"),
        ("two.csv", "a,b\n1,2\n", r"two\.csv: line 1: 2 columns but no 'group' column"),
        ("cells.csv", "id,group\n1,p\n2\n", r"cells\.csv: line 3: 1 cells but the header has 2"),
        ("blank.csv", "id,group\n1,p\n2, \n", r"blank\.csv: line 3: empty group id"),
        ("nan.npy", None, r"nan\.npy: row 1: group id is nan"),
        ("missing.txt", "", r"missing\.txt: no such group file"),
    ],
)
def test_groups_file_errors(tmp_path: Path, name: str, content: str | None,
                            pattern: str) -> None:
    from pace_edge.data import read_groups_file

    path = tmp_path / name
    if name == "nan.npy":
        np.save(path, np.array([1.0, np.nan]))
    elif name != "missing.txt":
        write(path, content or "")
    with pytest.raises(DataError, match=pattern):
        read_groups_file(path)


def test_load_dataset_groups_file_replaces_and_checks_length(tmp_path: Path) -> None:
    write_npy_folder(tmp_path / "npy", small_dataset(6))
    ids = write(tmp_path / "ids.txt", "a\na\nb\nb\nc\nc\n")
    got = load_dataset(tmp_path / "npy", groups=ids)
    assert got.n_groups == 3
    short = write(tmp_path / "short.txt", "a\nb\n")
    with pytest.raises(DataError, match=r"short\.txt: 2 group ids but .*npy \(train\) has 6 "
                                        r"spectra \(one id per spectrum, in the data's order\)"):
        load_dataset(tmp_path / "npy", groups=short)
