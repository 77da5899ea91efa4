"""An export whose manifest records a failed gate is refused by the commands that run it
(one line naming the gate and ``--allow-failed``) and by ``doctor``'s backend choice; with
``--allow-failed`` it runs. Exports written before the manifest had a ``status`` fall back to
their parity rows and accuracy gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pace_edge.cli.main import main
from pace_edge.errors import BundleError
from pace_edge.export.manifest import gate_status, load_manifest, refuse_failed, write_manifest


@pytest.fixture
def failed_export(synthetic_export: Path, tmp_path: Path) -> Path:
    """A copy of the x86 export whose manifest says it failed its accuracy gate."""
    out = shutil.copytree(synthetic_export, tmp_path / "failed")
    manifest = load_manifest(out)
    manifest.status = gate_status({"accuracy": "on data (test): m.xml lost 9 of 93 spectra"})
    write_manifest(out, manifest)
    return out


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from pace_edge.data import make_synthetic, write_npy_folder

    test = make_synthetic(n_per_class=4, seed=98)
    return write_npy_folder(tmp_path / "data", test, test)


def test_evaluate_refuses_a_failed_export_unless_allowed(failed_export: Path, data_dir: Path,
                                                         capsys) -> None:
    args = ["evaluate", "--model", str(failed_export), "--data", str(data_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"pace-edge evaluate: error: {failed_export} failed its accuracy gate "
                          "(accuracy: on data (test): m.xml lost 9 of 93 spectra)")
    assert err.endswith("--allow-failed runs it anyway")
    assert main([*args, "--allow-failed"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_stream_and_benchmark_take_allow_failed(capsys) -> None:
    for command in ("stream", "benchmark", "predict", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--allow-failed" in capsys.readouterr().out


def test_doctor_says_why_a_failed_export_does_not_run(failed_export: Path) -> None:
    from pace_edge.device_check import export_status

    status = export_status(failed_export)
    assert status["backend"] is None and "--allow-failed" in status["reason"]


def test_accepted_gates_and_passing_exports_run(synthetic_export: Path, tmp_path: Path) -> None:
    manifest = load_manifest(synthetic_export)
    assert manifest.status["passed"] and manifest.failed_gates == []
    refuse_failed(manifest)
    manifest.status = gate_status({"sensitivity": "outside"}, accepted=("sensitivity",))
    assert manifest.failed_gates == [] and manifest.status["accepted_gates"] == ["sensitivity"]
    refuse_failed(manifest)


def test_an_old_manifest_without_status_falls_back_to_its_gates(synthetic_export: Path) -> None:
    manifest = load_manifest(synthetic_export)
    manifest.status = {}
    assert manifest.failed_gates == []
    manifest.parity[0]["passed"] = False
    manifest.accuracy = {"passed": False}
    assert manifest.failed_gates == ["parity", "accuracy"]
    with pytest.raises(BundleError, match="failed its parity and accuracy gates"):
        refuse_failed(manifest)
    refuse_failed(manifest, allow_failed=True)
