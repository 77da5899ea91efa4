"""Exporting into a folder that already holds an export: refused without ``--force`` (one line,
nothing touched); with it, the previous export's files are replaced and named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pace_edge.cli.main import main

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("openvino")


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_previous_export_is_kept_without_force(synthetic_bundle: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export"
    base = ["export", "--model", str(synthetic_bundle), "--out", str(out),
            "--parity-samples", "16"]
    assert main([*base, "--target", "openvino"]) == 0
    before = snapshot(out)
    assert {"model.xml", "model.bin", "manifest.json", "report.md"} <= set(before)
    capsys.readouterr()

    # a target switch into the same folder: refused, every file as it was
    assert main([*base, "--target", "onnx"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"pace-edge export: error: {out} already holds an export (target "
                     "openvino, fp32); --force replaces it, or choose another --out"]
    assert snapshot(out) == before

    # --force replaces it and says which files go
    assert main([*base, "--target", "onnx", "--force"]) == 0
    printed = capsys.readouterr().out
    assert (f"replacing the export in {out} (target openvino, fp32): manifest.json, "
            "manifest.json.sha256, model.bin, model.xml, report.md") in printed
    assert sorted(snapshot(out)) == ["manifest.json", "manifest.json.sha256", "model.onnx",
                                     "report.md"]
