"""``pace-edge build-native``: configure and build ``pace-stream``, the C++ streaming classifier.

Runs CMake on the repository's ``CMakeLists.txt`` (a source checkout: the native sources live
in the top-level ``runtimes/native``), with the OpenVINO C++ runtime that the ``openvino`` wheel
ships (``OpenVINO_DIR`` from :func:`openvino.utils.get_cmake_path`) and, with ``--tensorrt``,
the TensorRT backend (TensorRT >= 10 and the CUDA toolkit, e.g. JetPack 6). Prints where
``pace-stream`` is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import PaceEdgeError
from .common import positive_int

HELP = "build pace-stream, the native (C++) streaming classifier, with CMake"
SOURCE_DIR = Path(__file__).resolve().parents[2]  # the checkout holding CMakeLists.txt
EXECUTABLE = "pace-stream"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-native", help=HELP, description=HELP + ".")
    p.add_argument("--build-dir", type=Path, default=Path("build"),
                   help="CMake build directory (default: ./build)")
    p.add_argument("--tensorrt", action="store_true",
                   help="also build the TensorRT backend (needs TensorRT >= 10 and CUDA; set "
                        "TensorRT_ROOT for a tarball install)")
    p.add_argument("--no-openvino", action="store_true",
                   help="leave out the OpenVINO backend (a TensorRT-only build, e.g. on Jetson)")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                   help="parallel compile jobs (default: all cores)")
    p.add_argument("--debug", action="store_true", help="debug build (default: Release)")
    p.set_defaults(run=run)


def openvino_cmake_dir() -> str:
    """``OpenVINO_DIR``: the environment's, else the one the openvino wheel ships."""
    if os.environ.get("OpenVINO_DIR"):
        return os.environ["OpenVINO_DIR"]
    try:
        import openvino.utils
    except ImportError:
        raise PaceEdgeError(
            "the OpenVINO backend needs OpenVINO's C++ runtime: pip install openvino (its wheel "
            "ships the CMake config), set OpenVINO_DIR, or build with --no-openvino --tensorrt"
        ) from None
    path = openvino.utils.get_cmake_path()
    if not path or not (Path(path) / "OpenVINOConfig.cmake").is_file():
        raise PaceEdgeError(f"the openvino package has no CMake config at {path!r}; set "
                            "OpenVINO_DIR to an OpenVINO install's cmake directory")
    return str(path)


def configure_command(build_dir: Path, *, tensorrt: bool = False, openvino: bool = True,
                      debug: bool = False, source: Path = SOURCE_DIR) -> list[str]:
    """The ``cmake`` configure command line for ``build_dir``."""
    if not openvino and not tensorrt:
        raise PaceEdgeError("--no-openvino needs --tensorrt: pace-stream needs a backend")
    command = ["cmake", "-S", str(source), "-B", str(build_dir),
               f"-DCMAKE_BUILD_TYPE={'Debug' if debug else 'Release'}",
               f"-DPACE_WITH_OPENVINO={'ON' if openvino else 'OFF'}",
               f"-DPACE_WITH_TENSORRT={'ON' if tensorrt else 'OFF'}"]
    if openvino:
        command.append(f"-DOpenVINO_DIR={openvino_cmake_dir()}")
    if not (build_dir / "CMakeCache.txt").is_file() and shutil.which("ninja"):
        command += ["-G", "Ninja"]  # a configured directory keeps its generator
    return command


def build_native(build_dir: Path, *, tensorrt: bool = False, openvino: bool = True,
                 jobs: int = 1, debug: bool = False, quiet: bool = False) -> Path:
    """Configure and build in ``build_dir``; return the path of ``pace-stream``."""
    if not (SOURCE_DIR / "CMakeLists.txt").is_file():
        raise PaceEdgeError(f"no CMakeLists.txt in {SOURCE_DIR}: build-native needs a source "
                            "checkout of pace-edge")
    for tool in ("cmake", os.environ.get("CXX", "c++")):
        if shutil.which(tool) is None:
            raise PaceEdgeError(f"{tool} is not installed; build-native needs CMake >= 3.16 and a "
                                "C++17 compiler")
    build_dir = build_dir.resolve()
    steps = [
        configure_command(build_dir, tensorrt=tensorrt, openvino=openvino, debug=debug),
        ["cmake", "--build", str(build_dir), "--parallel", str(jobs)],
    ]
    for step, command in zip(("configure", "build"), steps, strict=True):
        result = subprocess.run(command, capture_output=quiet, text=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:]) if quiet else ""
            raise PaceEdgeError(f"CMake {step} failed (exit {result.returncode})"
                                + (f":\n{tail}" if tail else "; see CMake's output above"))
    executable = build_dir / EXECUTABLE
    if not executable.is_file():
        raise PaceEdgeError(f"the build finished but {executable} is missing")
    return executable


def run(args: argparse.Namespace) -> int:
    executable = build_native(args.build_dir, tensorrt=args.tensorrt,
                              openvino=not args.no_openvino, jobs=args.jobs, debug=args.debug)
    print(f"built {executable}")
    print(f"test it:  ctest --test-dir {args.build_dir.resolve()}")
    print(f"run it:   {executable} --port PORT --protocol obp|ascii --model EXPORT_DIR")
    return 0
