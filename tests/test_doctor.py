"""``pace-edge doctor``: the readers behind it (fed text, not hardware), the TensorRT venv hint,
serial-port permissions, its report and its exit codes (0 runs, 1 cannot run, 2 usage)."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_runtime_select import make_export, record_plan

from pace_edge import device_check as dc
from pace_edge.cli.main import main

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16
processor\t: 1
model name\t: AMD EPYC 9R14
"""
ORIN_CPUINFO = (
    "processor\t: 0\nBogoMIPS\t: 62.50\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
    "lrcpc dcpop asimddp\nCPU part\t: 0xd42\nprocessor\t: 1\n"
)


def test_cpu_info_reads_x86_flags_and_arm_features() -> None:
    x86 = dc.cpu_info(X86_CPUINFO, "x86_64")
    assert (x86.model, x86.architecture, x86.cores) == ("AMD EPYC 9R14", "x86_64", 2)
    assert x86.simd == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    orin = dc.cpu_info(ORIN_CPUINFO, "aarch64", "NVIDIA Jetson AGX Orin Developer Kit")
    assert orin.model == "NVIDIA Jetson AGX Orin Developer Kit" and orin.cores == 2
    assert orin.simd == ["asimd", "asimdhp", "asimddp"]


def test_jetson_release(tmp_path: Path) -> None:
    text = ("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, "
            "DATE: Mon May  6 17:34:21 UTC 2024\n")
    assert dc.jetson_release(text) == "R36.3.0"
    assert dc.jetson_release(path=str(tmp_path / "absent")) is None


def test_venv_isolation(tmp_path: Path) -> None:
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert dc.in_isolated_venv(str(tmp_path), "/usr")
    (tmp_path / "pyvenv.cfg").write_text("include-system-site-packages = true\n")
    assert not dc.in_isolated_venv(str(tmp_path), "/usr")
    assert not dc.in_isolated_venv("/usr", "/usr")  # the system Python itself


def test_tensorrt_hint_for_a_plain_venv_on_a_jetson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    jetpack = ["/usr/lib/python3.10/dist-packages/tensorrt"]
    status = dc.tensorrt_status(jetpack, isolated=True)
    assert not status.importable and "not importable (ModuleNotFoundError" in status.detail
    assert "python3 -m venv --system-site-packages" in status.hint and jetpack[0] in status.hint
    assert "install JetPack 6" in dc.tensorrt_status([], isolated=True).hint
    assert dc.tensorrt_status(jetpack, isolated=False).hint is None  # visible, yet broken
    monkeypatch.setitem(sys.modules, "tensorrt", SimpleNamespace(__version__="10.3.0.30"))
    assert dc.tensorrt_status([], isolated=True) == dc.TensorRTStatus(True, "10.3.0.30",
                                                                      "importable")


def fake_stat(mode: int, uid: int, gid: int) -> os.stat_result:
    return os.stat_result((stat.S_IFCHR | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


def test_serial_port_access_follows_the_dialout_group() -> None:
    try:
        dialout = grp.getgrnam("dialout").gr_gid
    except KeyError:
        pytest.skip("this system has no dialout group")
    device = fake_stat(0o660, 0, dialout)  # crw-rw---- root:dialout, as udev creates ttyUSB0
    ok, group, detail = dc.port_access("/dev/ttyUSB0", st=device, uid=1000, groups=[1000])
    assert (ok, group) == (False, "dialout")
    assert detail == "not a member of dialout: sudo usermod -aG dialout $USER, then log out and in"
    assert dc.port_access("/dev/ttyUSB0", st=device, uid=1000, groups=[1000, dialout]) == (
        True, "dialout", "member of dialout")
    assert dc.port_access("/dev/ttyUSB0", st=device, uid=0, groups=[0])[0]
    assert dc.port_access("/dev/x", st=fake_stat(0o666, 0, dialout), uid=5, groups=[])[0]
    assert not dc.port_access("/nonexistent/ttyUSB9")[0]


def test_usable_backends() -> None:
    trt_ok = dc.TensorRTStatus(True, "10.3.0.30", "importable")
    trt_no = dc.TensorRTStatus(False, None, "not importable")
    gpu = {"gpu": {"name": "Orin", "compute_capability": "8.7"}}
    runtimes = {"onnxruntime": "1.20", "openvino": None, "cuda-python": "12.6"}
    assert dc.usable_backends(runtimes, trt_ok, gpu) == ["tensorrt", "onnxruntime"]
    assert dc.usable_backends(runtimes, trt_ok, {"gpu": None}) == ["onnxruntime"]
    assert dc.usable_backends({**runtimes, "cuda-python": None}, trt_ok, gpu) == ["onnxruntime"]
    assert dc.usable_backends({"onnxruntime": None}, trt_no, gpu) == []


# --- the command -------------------------------------------------------------------------------


def test_doctor_names_the_backend_of_a_runnable_export(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    export = make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")])
    assert main(["doctor", "--export", str(export)]) == 0
    out = capsys.readouterr().out
    assert f"export       {export}: runs on onnxruntime" in out
    for key in ("cpu", "simd", "jetson", "onnxruntime", "openvino", "tensorrt", "cuda", "gpu",
                "backends", "serial"):
        assert any(line.startswith(f"{key} ") for line in out.splitlines()), key
    assert main(["doctor", "--export", str(export), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["can_run"] is True and report["export"]["backend"] == "onnxruntime"
    assert report["cpu"]["cores"] >= 1 and "importable" in report["tensorrt"]


def test_doctor_exits_1_when_the_export_cannot_run(tmp_path: Path, capsys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pace_edge.runtimes import select

    # a Jetson export with its device-built plan, on a box with neither TensorRT nor a CPU runtime
    monkeypatch.setattr(select, "package_available", lambda name: name == "torch")
    export = record_plan(make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")]))
    assert main(["doctor", "--export", str(export)]) == 1
    out = capsys.readouterr().out
    assert "CANNOT run here" in out and "tensorrt: the tensorrt package is not installed" in out
    assert ("plan         model.plan (fp16, TensorRT 10.3.0.30 on Fake GPU, engine check "
            "passed): usable") in out
    (export / "model.onnx").write_bytes(b"altered")  # a tampered export cannot run either
    assert main(["doctor", "--export", str(export)]) == 1
    assert "does not match the manifest" in capsys.readouterr().out


def test_doctor_reports_the_plan_and_why_it_is_not_used(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    export = record_plan(make_export(tmp_path / "e", [("model.onnx", "onnx", "fp32")]),
                         passed=False)
    assert main(["doctor", "--export", str(export)]) == 0  # runs on onnxruntime meanwhile
    out = capsys.readouterr().out
    assert ("plan         model.plan (fp16, TensorRT 10.3.0.30 on Fake GPU, engine check "
            "FAILED): NOT usable: engine.json records no passed engine check") in out
    (export / "engine.json").write_bytes((export / "engine.json").read_bytes() + b" ")
    assert main(["doctor", "--export", str(export), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "engine.json was edited after it was written" in report["export"]["reason"]
    assert "engine.json was edited" in report["export"]["plan"]["problem"]


def test_doctor_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["doctor", "--export", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"pace-edge doctor: error: --export {tmp_path / 'absent'}: no such directory")
    assert main(["doctor", "--export", str(tmp_path)]) == 2
    assert "neither an export (manifest.json) nor a model bundle" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--bogus"])
    assert exc.value.code == 2


def test_doctor_imports_neither_torch_nor_onnx() -> None:
    code = ("import sys; from pace_edge.device_check import collect, render; render(collect()); "
            "print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert out.stdout.strip().splitlines()[-1] == "[]"
