"""Exit codes and one-line errors of every command (README, "Exit status").

0 ok, 1 a quality gate or failed measurement, 2 a user error (argparse's included), 130
interrupted. The quality gates themselves are exercised in ``test_accuracy_gate`` (export),
``test_benchmark_cli`` (``--min-accuracy``, every build failed) and ``test_manifest`` (parity).
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pace_edge.cli import main as main_module
from pace_edge.cli.main import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
COMMAND_NAMES = ["demo", "train", "evaluate", "predict", "info", "export", "build-engine",
                 "build-native", "simulate", "stream", "benchmark", "keygen", "doctor", "fleet",
                 "rightsize"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pace_edge.cli.main", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def one_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"pace-edge {command}: error: "), lines[0]
    assert "Traceback" not in stderr and "usage:" not in stderr
    return lines[0]


def test_every_command_in_readme_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMAND_NAMES)
    readme = (ROOT / "README.md").read_text()
    for name in COMMAND_NAMES:
        assert f"`pace-edge {name}" in readme
    assert len(COMMANDS) == len(COMMAND_NAMES)


@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_argparse_errors_are_one_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--no-such-option"])
    assert exc.value.code == 2
    line = one_line(capsys.readouterr().err, command)
    assert f"(see pace-edge {command} --help)" in line
    assert "--no-such-option" in line or "the following arguments are required" in line


def test_unknown_command_and_missing_command_are_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["frobnicate"], []):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pace-edge: error: ")


def test_unknown_choice_is_one_line_and_choices_ignore_case(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export", "--model", str(tmp_path), "--target", "coreml", "--out", "o"])
    assert exc.value.code == 2
    line = one_line(capsys.readouterr().err, "export")
    assert "invalid choice: 'coreml'" in line and "'x86'" in line
    # X86 is x86: the command gets past argument parsing to the missing bundle
    assert main(["export", "--model", str(tmp_path / "none"), "--target", "X86",
                 "--precision", "FP32", "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in one_line(capsys.readouterr().err, "export")
    args = build_parser().parse_args(["simulate", "--protocol", "OBP"])
    assert args.protocol == "obp"


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["demo", "--out", "FILE"], "exists and is not a directory"),
        (["train", "--data", "MISSING", "--out", "OUT"], "MISSING"),
        (["evaluate", "--model", "MISSING", "--data", "MISSING"], "MISSING"),
        (["predict", "--model", "MISSING", "x.npy"], "MISSING"),
        (["info", "MISSING"], "MISSING"),
        (["export", "--model", "MISSING", "--target", "onnx", "--out", "OUT"], "MISSING"),
        (["build-engine", "--export", "MISSING"], "MISSING"),
        (["build-native", "--no-openvino"], "--no-openvino needs --tensorrt"),
        (["simulate", "--protocol", "obp", "--faults", "bogus=0.1"], "unknown fault 'bogus'"),
        (["stream", "--port", "/dev/null", "--protocol", "obp", "--model", "MISSING"],
         "MISSING"),
        (["benchmark", "--model", "MISSING"], "MISSING"),
        (["keygen", "--out", "FILE"], "exists and is not a directory"),
        (["doctor", "--export", "MISSING"], "MISSING"),
        (["fleet", "--mqtt", "http://localhost/lab"], "mqtt"),
        (["rightsize", "--data", "MISSING", "--out", "OUT"], "MISSING"),
    ],
    ids=COMMAND_NAMES,
)
def test_user_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], phrase: str) -> None:
    if args[0] == "build-native" and not (ROOT / "CMakeLists.txt").is_file():
        pytest.skip("build-native needs a source checkout")
    (tmp_path / "FILE").write_text("not a folder")
    names = {"MISSING": str(tmp_path / "missing"), "OUT": str(tmp_path / "out"),
             "FILE": str(tmp_path / "FILE")}
    argv = [names.get(a, a) for a in args]
    out = run_cli(*argv)
    assert out.returncode == 2, out.stderr
    assert names.get(phrase, phrase) in one_line(out.stderr, args[0])


def test_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from pace_edge.cli import info

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", interrupted)
    assert main(["info", "anything"]) == 130
    assert capsys.readouterr().err.strip() == "pace-edge info: interrupted"


def test_predict_with_an_unreadable_file_exits_2(synthetic_export: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2\n3,nan\n")
    assert main(["predict", "--model", str(synthetic_export), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "bad.txt: line 2: NaN" in one_line(captured.err, "predict")


# --- serial ports -------------------------------------------------------------------------


def test_a_missing_port_is_named_once(synthetic_export: Path) -> None:
    port = "/dev/ttyPACE-EDGE-NONE"
    out = run_cli("stream", "--port", port, "--protocol", "obp", "--model", str(synthetic_export))
    assert out.returncode == 2
    error = [line for line in out.stderr.splitlines() if ": error: " in line]
    assert len(error) == 1 and "Traceback" not in out.stderr
    assert error[0].count(port) == 1 and "no such port" in error[0]


def test_a_forbidden_port_hints_at_the_dialout_group() -> None:
    import serial

    from pace_edge.streaming.transport import open_error

    exc = serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: [Errno 13] "
                                               "Permission denied: '/dev/ttyUSB0'")
    message = open_error("/dev/ttyUSB0", exc)
    assert message.count("/dev/ttyUSB0") == 1 and "\n" not in message
    assert "permission denied" in message and "dialout" in message


def test_a_forbidden_port_for_real(tmp_path: Path) -> None:
    """A port this user may not open, opened for real: as root (CI), in a forked child that
    has dropped to the unprivileged ``nobody`` user, since root may open any file."""
    from pace_edge.streaming.errors import TransportClosed
    from pace_edge.streaming.transport import Transport

    port = tmp_path / "tty"
    port.write_text("")
    port.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(TransportClosed, match="dialout"):
            Transport.open(str(port))
        return
    pid = os.fork()
    if pid == 0:  # child: exit 0 only when the refusal names the dialout group
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            Transport.open(str(port))
            code = 2
        except TransportClosed as exc:
            code = 0 if "dialout" in str(exc) and "permission denied" in str(exc) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- build-native ---------------------------------------------------------------------------


def fake_cmake(folder: Path) -> Path:
    """A ``cmake`` that logs its arguments and, asked to build, writes ``pace-stream``."""
    folder.mkdir()
    script = folder / "cmake"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {folder}/calls\n'
        'if [ "$1" = "--build" ]; then mkdir -p "$2" && : > "$2/pace-stream"; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def test_build_native_configures_builds_and_says_where(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    if not (ROOT / "CMakeLists.txt").is_file():
        pytest.skip("build-native needs a source checkout")
    tools = fake_cmake(tmp_path / "bin")
    compiler = tools / "c++"
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:/usr/bin:/bin", "CXX": str(compiler)}
    env.pop("OpenVINO_DIR", None)
    build = tmp_path / "build"
    out = run_cli("build-native", "--build-dir", str(build), "--jobs", "1", env=env)
    assert out.returncode == 0, out.stderr
    configure, compile_ = (tools / "calls").read_text().splitlines()
    assert f"-S {ROOT} -B {build}" in configure and "-DOpenVINO_DIR=" in configure
    assert compile_ == f"--build {build} --parallel 1"
    assert out.stdout.splitlines()[0] == f"built {build / 'pace-stream'}"


def test_build_native_without_cmake_is_one_line(tmp_path: Path) -> None:
    if not (ROOT / "CMakeLists.txt").is_file():
        pytest.skip("build-native needs a source checkout")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_cli("build-native", "--build-dir", str(tmp_path / "b"),
                  env={**os.environ, "PATH": str(empty)})
    assert out.returncode == 2
    assert "cmake is not installed" in one_line(out.stderr, "build-native")


def test_build_native_without_openvino_is_one_line(tmp_path: Path) -> None:
    if not (ROOT / "CMakeLists.txt").is_file():
        pytest.skip("build-native needs a source checkout")
    tools = fake_cmake(tmp_path / "bin")
    compiler = tools / "c++"
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o755)
    block = ("import sys\nclass B:\n    def find_spec(self, name, path=None, target=None):\n"
             "        if name.partition('.')[0] == 'openvino':\n"
             "            raise ModuleNotFoundError(name, name=name)\n"
             "sys.meta_path.insert(0, B())\n"
             "from pace_edge.cli.main import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PATH": f"{tools}:/usr/bin:/bin", "CXX": str(compiler)}
    env.pop("OpenVINO_DIR", None)
    out = subprocess.run([sys.executable, "-c", block, "build-native", "--build-dir",
                          str(tmp_path / "b")], capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 2
    line = one_line(out.stderr, "build-native")
    assert "OpenVINO" in line and "pip install openvino" in line


def test_main_module_exit_codes_are_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Exit status"):]
    section = section[: section.index("\n## ")]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert code in section
    assert main_module.EXIT_FAILED == 1 and main_module.EXIT_USER_ERROR == 2
