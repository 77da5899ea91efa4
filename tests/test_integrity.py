"""Edited metadata and signed exports.

A bundle's ``model.json`` and an export's ``manifest.json`` are covered by sha256 sidecars: an
edited class name, axis or preprocessing step is refused by ``pace-edge info``, by bundle
loading, by the runners and by ``pace-edge stream`` with one line (exit 2), and files written
before the digest existed are refused with a hint. Exports signed with ``pace-edge export
--sign`` run under ``--trusted-keys``; unsigned, foreign-signed and altered-after-signing ones
do not. Manifests are strict JSON. (The native ``pace-stream`` side is in test_native.py.)
"""

from __future__ import annotations

import json
import math
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pace_edge.bundle import META_FILE, Bundle, seal_bundle
from pace_edge.cli.main import main
from pace_edge.errors import BundleError, PaceEdgeError
from pace_edge.export.manifest import (
    DIGEST_FILE,
    MANIFEST_FILE,
    SIGNATURE_FILE,
    Artefact,
    InputSpec,
    Manifest,
    OutputSpec,
    sign_export,
    signature_of,
    verify_export,
    write_manifest,
)
from pace_edge.integrity.digest import write_digest
from pace_edge.integrity.signing import (
    SignatureError,
    generate_key_pair,
    load_private_key,
    load_trusted_keys,
)

LASER_NM = 785.0


def edit_json(path: Path, change) -> None:
    """Edit a JSON file in place the way a person with a text editor would (digest untouched)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Edits to what a model means, each in a bundle's model.json and in an export's manifest.json.
BUNDLE_EDITS = {
    "class name": lambda m: m["classes"].__setitem__(0, "renamed"),
    "axis": lambda m: m["input"]["axis"].__setitem__(0, m["input"]["axis"][0] + 1.0),
    "preprocessing": lambda m: m["preprocessing"].pop(),
}
EXPORT_EDITS = {
    "class name": lambda m: m["classes"].__setitem__(0, "renamed"),
    "axis": lambda m: m["input"]["axis"].__setitem__(0, m["input"]["axis"][0] + 1.0),
    "preprocessing": lambda m: m["input"]["preprocessing"].pop(),
}


# --- bundles ---------------------------------------------------------------------------------


@pytest.fixture
def bundle_copy(synthetic_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(synthetic_bundle, copy)
    return copy


def test_bundle_writes_a_digest_of_model_json(synthetic_bundle: Path) -> None:
    digest, name = (synthetic_bundle / "model.json.sha256").read_text().split()
    assert name == META_FILE
    import hashlib

    assert digest == hashlib.sha256((synthetic_bundle / META_FILE).read_bytes()).hexdigest()
    if shutil.which("sha256sum"):  # the sidecar is in sha256sum's own format
        check = subprocess.run(["sha256sum", "-c", "model.json.sha256"], cwd=synthetic_bundle,
                               capture_output=True, text=True)
        assert check.returncode == 0 and "model.json: OK" in check.stdout


@pytest.mark.parametrize("edit", sorted(BUNDLE_EDITS))
def test_edited_model_json_is_refused_everywhere(bundle_copy: Path, edit: str, capsys) -> None:
    edit_json(bundle_copy / META_FILE, BUNDLE_EDITS[edit])
    expected = "model.json was edited after it was written"
    with pytest.raises(BundleError, match=expected):
        Bundle.load(bundle_copy)
    code, out, err = run_cli(["info", str(bundle_copy)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("pace-edge info: error: ") and expected in err
    assert err.count("\n") == 1  # one line, no traceback
    from pace_edge.runtimes import load_runner

    with pytest.raises(BundleError, match=expected):
        load_runner(bundle_copy)
    for argv in (["predict", "--model", str(bundle_copy), str(bundle_copy)],
                 ["evaluate", "--model", str(bundle_copy), "--data", str(bundle_copy)],
                 ["export", "--model", str(bundle_copy), "--target", "onnx", "--out",
                  str(bundle_copy.parent / "out")],
                 ["stream", "--port", "/dev/null", "--protocol", "obp", "--model",
                  str(bundle_copy), "--backend", "torch"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and expected in err and err.count("\n") == 1, argv


def test_bundle_without_digest_is_refused_until_sealed(bundle_copy: Path, capsys) -> None:
    (bundle_copy / "model.json.sha256").unlink()
    code, _, err = run_cli(["info", str(bundle_copy)], capsys)
    assert code == 2 and "model.json.sha256 is missing" in err
    assert "pace-edge info DIR --seal" in err and err.count("\n") == 1
    code, out, _ = run_cli(["info", str(bundle_copy), "--seal"], capsys)
    assert code == 0 and "recorded" in out and "weights and model.json verified" in out
    assert Bundle.load(bundle_copy).classes
    # sealing never blesses an edit of a bundle that has a digest
    edit_json(bundle_copy / META_FILE, BUNDLE_EDITS["class name"])
    with pytest.raises(BundleError, match="already exists"):
        seal_bundle(bundle_copy)
    with pytest.raises(BundleError, match="edited after it was written"):
        Bundle.load(bundle_copy)


def test_seal_still_checks_the_weights(bundle_copy: Path) -> None:
    (bundle_copy / "model.json.sha256").unlink()
    weights = bundle_copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="altered or replaced"):
        seal_bundle(bundle_copy)
    assert not (bundle_copy / "model.json.sha256").exists()


def test_bundle_metadata_is_strict_json(tmp_path: Path) -> None:
    from factories import random_pace

    from pace_edge.preprocess import Pipeline

    model = random_pace("tiny", 2)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    training = {"history": {"loss": [0.5, float("nan"), float("inf")]}}
    Bundle(model.config, weights, ["a", "b"], np.linspace(0, 1, 64), Pipeline([]),
           training).save(tmp_path)
    text = (tmp_path / META_FILE).read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert Bundle.load(tmp_path).training["history"]["loss"] == [0.5, None, None]


# --- export manifests --------------------------------------------------------------------------


def fake_export(directory: Path, parity_diff: float = 1e-7) -> Path:
    """A small export whose artefact is not a model (enough for manifest-level checks)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(b"not really onnx")
    write_manifest(directory, Manifest(
        target="onnx", precision="fp32", artefacts=[Artefact("model.onnx", "onnx", "fp32")],
        input=InputSpec("spectrum", 3, "dynamic", [1.0, 2.0, 3.0], []),
        output=OutputSpec("logits", 2), classes=["a", "b"], source={},
        parity=[{"artefact": "model.onnx", "max_abs_diff": parity_diff,
                 "mean_abs_diff": parity_diff, "agreement": 1.0, "passed": True}],
    ))
    return directory


def test_manifest_is_strict_json_and_nan_reads_back(tmp_path: Path) -> None:
    export = fake_export(tmp_path / "e", parity_diff=float("nan"))
    text = (export / MANIFEST_FILE).read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["parity"][0]["max_abs_diff"] is None
    assert math.isnan(verify_export(export).parity[0]["max_abs_diff"])


@pytest.fixture
def export_copy(synthetic_export: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(synthetic_export, copy)
    return copy


@pytest.mark.parametrize("edit", sorted(EXPORT_EDITS))
def test_edited_manifest_is_refused_by_runners_and_stream(export_copy: Path, edit: str,
                                                         capsys) -> None:
    pytest.importorskip("onnxruntime")
    from pace_edge.runtimes import load_runner, select_backend

    edit_json(export_copy / MANIFEST_FILE, EXPORT_EDITS[edit])
    expected = "manifest.json was edited after it was written"
    for load in (verify_export, load_runner, select_backend):
        with pytest.raises(BundleError, match=expected):
            load(export_copy)
    code, _, err = run_cli(["stream", "--port", "/dev/null", "--protocol", "obp",
                            "--model", str(export_copy)], capsys)
    assert code == 2 and err.count("\n") == 1 and expected in err


def test_export_without_digest_is_refused_with_a_hint(export_copy: Path) -> None:
    (export_copy / DIGEST_FILE).unlink()
    with pytest.raises(BundleError, match="manifest.json.sha256 is missing.*re-export the bundle"):
        verify_export(export_copy)


def test_manifest_records_the_bundle_metadata(synthetic_export: Path,
                                              synthetic_bundle: Path) -> None:
    from pace_edge.integrity.digest import sha256_file

    source = verify_export(synthetic_export).source
    assert source["metadata_sha256"] == sha256_file(synthetic_bundle / META_FILE)


# --- keys and signatures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two key pairs (ours, theirs) and a trusted folder holding only our public key."""
    root = tmp_path_factory.mktemp("keys")
    ours = generate_key_pair(root / "ours", "lab")
    theirs = generate_key_pair(root / "theirs", "other")
    trusted = root / "trusted"
    trusted.mkdir()
    shutil.copy(ours[1], trusted / ours[1].name)
    return {"ours": ours[0], "theirs": theirs[0], "trusted": trusted}


def test_keygen_writes_an_owner_only_private_key(tmp_path: Path, capsys) -> None:
    code, out, _ = run_cli(["keygen", "--out", str(tmp_path / "k"), "--name", "lab"], capsys)
    assert code == 0
    private, public = tmp_path / "k" / "lab.key", tmp_path / "k" / "lab.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert str(private) in out and str(public) in out
    load_private_key(private)
    assert len(load_trusted_keys(tmp_path / "k").keys) == 1
    # never overwrites a key
    before = private.read_bytes()
    code, _, err = run_cli(["keygen", "--out", str(tmp_path / "k"), "--name", "lab"], capsys)
    assert code == 2 and "already exists" in err and private.read_bytes() == before


def test_bad_keys_are_refused_by_name(tmp_path: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(PaceEdgeError, match="is not a directory"):
        load_trusted_keys(tmp_path / "nowhere")
    with pytest.raises(PaceEdgeError, match=r"holds no public key \(\*\.pem\)"):
        load_trusted_keys(tmp_path)
    (tmp_path / "lab.pem").write_bytes(keys["ours"].read_bytes())
    with pytest.raises(PaceEdgeError, match="holds a private key"):
        load_trusted_keys(tmp_path)
    (tmp_path / "lab.pem").write_text("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n")
    with pytest.raises(PaceEdgeError, match="lab.pem: not a PEM public key"):
        load_trusted_keys(tmp_path)
    with pytest.raises(PaceEdgeError, match="not a PEM private key"):
        load_private_key(tmp_path / "lab.pem")


def test_signature_checks(tmp_path: Path, keys: dict[str, Path]) -> None:
    trusted = load_trusted_keys(keys["trusted"])
    export = fake_export(tmp_path / "e")
    with pytest.raises(SignatureError, match=r"is not signed \(manifest.json.sig is missing\)"):
        verify_export(export, trusted)
    sign_export(export, load_private_key(keys["theirs"]))
    with pytest.raises(SignatureError, match="signed by key .*which is not one of the 1 trusted"):
        verify_export(export, trusted)
    assert signature_of(export)["key_sha256"] != trusted.keys[0].key_sha256
    sign_export(export, load_private_key(keys["ours"]))
    assert verify_export(export, trusted).classes == ["a", "b"]
    assert signature_of(export)["key_sha256"] == trusted.keys[0].key_sha256
    assert signature_of(fake_export(tmp_path / "unsigned")) is None

    # altered after signing, even with the digest brought up to date
    path = export / MANIFEST_FILE
    text = path.read_bytes().replace(b'"a"', b'"renamed"')
    path.write_bytes(text)
    write_digest(path, text)
    assert verify_export(export).classes[0] == "renamed"  # the digest alone cannot tell
    with pytest.raises(SignatureError, match="lab.pub.pem does not match: manifest.json was "
                                             "altered after signing"):
        verify_export(export, trusted)

    # an artefact changed after signing: its hash in the signed manifest no longer matches
    export = fake_export(tmp_path / "f")
    sign_export(export, load_private_key(keys["ours"]))
    (export / "model.onnx").write_bytes(b"another model")
    with pytest.raises(BundleError, match="model.onnx: sha256 .* altered or replaced"):
        verify_export(export, trusted)


def test_rewriting_a_manifest_drops_its_signature(tmp_path: Path, keys: dict[str, Path]) -> None:
    export = fake_export(tmp_path / "e")
    sign_export(export, load_private_key(keys["ours"]))
    manifest = verify_export(export)
    manifest.runtime["tensorrt"] = {"engine_built": True}
    write_manifest(export, manifest)
    assert not (export / SIGNATURE_FILE).exists()
    with pytest.raises(SignatureError, match="is not signed"):
        verify_export(export, load_trusted_keys(keys["trusted"]))


def test_signing_is_device_side_light(tmp_path: Path, keys: dict[str, Path]) -> None:
    export = fake_export(tmp_path / "e")
    sign_export(export, load_private_key(keys["ours"]))
    code = (
        "import sys\n"
        "from pace_edge.integrity.signing import load_trusted_keys\n"
        "from pace_edge.export.manifest import verify_export\n"
        f"verify_export({str(export)!r}, load_trusted_keys({str(keys['trusted'])!r}))\n"
        "print(sorted({'torch', 'onnx'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- the CLI: export --sign, stream --trusted-keys ---------------------------------------------


@pytest.fixture(scope="module")
def signed_export(synthetic_bundle: Path, keys: dict[str, Path],
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("signed") / "onnx"
    assert main(["export", "--model", str(synthetic_bundle), "--target", "onnx", "--out",
                 str(out), "--parity-samples", "16", "--sign", str(keys["ours"])]) == 0
    return out


def test_export_sign_writes_a_signature(signed_export: Path, keys: dict[str, Path]) -> None:
    signature = json.loads((signed_export / SIGNATURE_FILE).read_text())
    assert signature["algorithm"] == "ed25519" and signature["file"] == MANIFEST_FILE
    trusted = load_trusted_keys(keys["trusted"])
    assert signature["key_sha256"] == trusted.keys[0].key_sha256
    assert verify_export(signed_export, trusted).target == "onnx"


def test_export_refuses_a_bad_key_before_exporting(synthetic_bundle: Path, tmp_path: Path,
                                                   keys: dict[str, Path], capsys) -> None:
    public = next(keys["trusted"].glob("*.pem"))
    code, _, err = run_cli(["export", "--model", str(synthetic_bundle), "--target", "onnx",
                            "--out", str(tmp_path / "o"), "--sign", str(public)], capsys)
    assert code == 2 and "not a PEM private key" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_re_export_without_sign_leaves_no_stale_signature(synthetic_bundle: Path,
                                                          signed_export: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "again"
    shutil.copytree(signed_export, out)
    assert main(["export", "--model", str(synthetic_bundle), "--target", "onnx", "--out",
                 str(out), "--parity-samples", "16", "--force"]) == 0
    assert not (out / SIGNATURE_FILE).exists() and (out / DIGEST_FILE).exists()


def _stream(export: Path, trusted: Path, capsys, port: str = "/dev/null",
            frames: int = 3) -> tuple[int, str, str]:
    return run_cli(["stream", "--port", port, "--protocol", "obp", "--model", str(export),
                    "--laser-nm", str(LASER_NM), "--max-frames", str(frames), "--threads", "1",
                    "--backend", "onnxruntime", "--trusted-keys", str(trusted)], capsys)


def test_stream_runs_only_trusted_exports(signed_export: Path, synthetic_export: Path,
                                          synthetic_bundle: Path, keys: dict[str, Path],
                                          tmp_path: Path, capsys) -> None:
    from pace_edge.streaming.emulator import Emulator

    trusted = keys["trusted"]
    with Emulator("obp", seed=7) as emu:
        code, out, err = _stream(signed_export, trusted, capsys, port=emu.port)
    assert code == 0, err
    assert len(out.splitlines()) == 3 and "class" in json.loads(out.splitlines()[0])

    refusals = {
        "unsigned": (synthetic_export, "is not signed (manifest.json.sig is missing)"),
        "bundle": (synthetic_bundle, "is not an export, and only exports signed by a key"),
    }
    foreign = tmp_path / "foreign"
    shutil.copytree(signed_export, foreign)
    sign_export(foreign, load_private_key(keys["theirs"]))
    refusals["foreign"] = (foreign, "which is not one of the 1 trusted key in")
    tampered = tmp_path / "tampered"
    shutil.copytree(signed_export, tampered)
    path = tampered / MANIFEST_FILE
    text = path.read_bytes().replace(b'"preprocessing": [', b'"preprocessing": [\n{"name": '
                                     b'"normalize", "method": "max"},', 1)
    path.write_bytes(text)
    write_digest(path, text)
    refusals["tampered"] = (tampered, "manifest.json was altered after signing")
    for name, (model, message) in refusals.items():
        code, out, err = _stream(model, trusted, capsys)
        assert code == 2, name
        assert err.startswith("pace-edge stream: error: ") and message in err, (name, err)
        assert err.count("\n") == 1 and out == "", name


def test_a_failed_export_is_not_signed(synthetic_bundle: Path, keys: dict[str, Path],
                                       tmp_path: Path, capsys,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from pace_edge.export import parity

    monkeypatch.setattr(parity, "THRESHOLDS", {**parity.THRESHOLDS, "fp32": (-1.0, 1.0)})
    out = tmp_path / "failed"
    code, printed, err = run_cli(["export", "--model", str(synthetic_bundle), "--target", "onnx",
                                  "--out", str(out), "--parity-samples", "16",
                                  "--sign", str(keys["ours"])], capsys)
    assert code == 1 and "parity check failed" in err
    assert "not signed: the export failed its checks" in printed
    assert (out / MANIFEST_FILE).is_file() and not (out / SIGNATURE_FILE).exists()
