"""Bundle round trip, integrity check and refusal of malformed bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pace_edge.bundle import META_FILE, WEIGHTS_FILE, Bundle
from pace_edge.errors import BundleError
from pace_edge.integrity.digest import write_digest
from pace_edge.model import preset
from pace_edge.model.pace import PACE, build_model
from pace_edge.preprocess import Pipeline


def make_bundle(tmp_path: Path) -> tuple[Bundle, Path]:
    torch.manual_seed(0)
    config = preset("tiny", 3)
    model = PACE(config).eval()
    weights = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    axis = np.linspace(400.0, 1800.0, 300)
    pipeline = Pipeline.from_spec("normalize:snv").anchored(axis)
    bundle = Bundle(config, weights, ["a", "b", "c"], axis, pipeline, {"recipe": {"lr": 1e-3}})
    return bundle, bundle.save(tmp_path / "bundle")


def rewrite_metadata(path: Path, text: str) -> None:
    """Replace model.json and its digest (a writer that knows the format: checks past the
    digest must still refuse what it wrote)."""
    (path / META_FILE).write_text(text)
    write_digest(path / META_FILE, text.encode())


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    bundle, path = make_bundle(tmp_path)
    loaded = Bundle.load(path)
    assert loaded.config == bundle.config
    assert loaded.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.axis, bundle.axis)
    assert loaded.preprocessing.to_list() == bundle.preprocessing.to_list()
    assert loaded.training == {"recipe": {"lr": 1e-3}}
    for k, v in bundle.weights.items():
        np.testing.assert_array_equal(loaded.weights[k], v)
    x = torch.randn(2, 300)
    a = build_model(bundle.config, bundle.weights)(x)
    b = build_model(loaded.config, loaded.weights)(x)
    assert torch.equal(a, b)
    meta = json.loads((path / META_FILE).read_text())
    assert len(meta["weights"]["sha256"]) == 64
    assert {"torch", "numpy", "python", "pace-edge"} <= set(meta["versions"])


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    _, path = make_bundle(tmp_path)
    raw = bytearray((path / WEIGHTS_FILE).read_bytes())
    raw[-1] ^= 0x01
    (path / WEIGHTS_FILE).write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="does not match"):
        Bundle.load(path)


def test_weights_never_unpickled(tmp_path: Path) -> None:
    _, path = make_bundle(tmp_path)
    assert (path / WEIGHTS_FILE).read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    assert not list(path.glob("*.pt")) and not list(path.glob("*.pkl"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: (p / WEIGHTS_FILE).unlink(), "is missing"),
        (lambda p: (p / META_FILE).unlink(), "model.json is missing"),
        (lambda p: rewrite_metadata(p, "{not json"), "not valid JSON"),
        (lambda p: rewrite_metadata(p, '{"format": "other"}'), "not a pace-edge bundle"),
    ],
)
def test_malformed_bundles(tmp_path: Path, mutate, message: str) -> None:
    _, path = make_bundle(tmp_path)
    mutate(path)
    with pytest.raises(BundleError, match=message):
        Bundle.load(path)


def test_missing_fields_and_newer_format(tmp_path: Path) -> None:
    _, path = make_bundle(tmp_path)
    meta = json.loads((path / META_FILE).read_text())
    del meta["classes"]
    rewrite_metadata(path, json.dumps(meta))
    with pytest.raises(BundleError, match="missing fields: classes"):
        Bundle.load(path)
    meta["classes"], meta["format_version"] = ["a", "b", "c"], 99
    rewrite_metadata(path, json.dumps(meta))
    with pytest.raises(BundleError, match="newer"):
        Bundle.load(path)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.load(tmp_path / "nowhere")
