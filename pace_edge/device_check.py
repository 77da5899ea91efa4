"""What this machine can run, and why not: the checks behind ``pace-edge doctor``.

CPU and SIMD flags (``/proc/cpuinfo``), the Jetson release (``/etc/nv_tegra_release``), ONNX
Runtime / OpenVINO / TensorRT / CUDA versions, the GPU, whether TensorRT is importable from this
Python (JetPack installs it into the system Python, which a plain venv cannot see), serial ports
and whether this user may open them, and the backend an export would run on. Imports neither
torch nor onnx; runtimes are looked up by their package metadata, TensorRT and cuda-python are
imported (they are what the TensorRT runner imports). Every reader takes its file's text or
path so it can be checked without the hardware.
"""

from __future__ import annotations

import glob
import grp
import importlib.metadata
import importlib.util
import os
import platform
import stat
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import PaceEdgeError

# SIMD features that decide which kernels the CPU runtimes use (x86 ``flags``, Arm ``Features``).
SIMD_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni",
    "amx_int8", "amx_bf16", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
)
SERIAL_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyTHS*", "/dev/ttyAMA*", "/dev/serial0")
VENV_HINT = ("python3 -m venv --system-site-packages .venv (JetPack's TensorRT lives in the "
             "system Python's dist-packages; a plain venv cannot see it)")


@dataclass
class CpuInfo:
    model: str
    architecture: str
    cores: int
    simd: list[str]


def cpu_info(cpuinfo: str | None = None, machine: str | None = None,
             device_model: str | None = None) -> CpuInfo:
    """The CPU's model, architecture, logical cores and SIMD flags from ``/proc/cpuinfo``."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    cores = 0
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        cores += key == "processor"
        fields.setdefault(key, value.strip())
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = (fields.get("model name") or fields.get("hardware") or device_model
             or _device_model() or fields.get("cpu part") or "unknown")
    return CpuInfo(model=model, architecture=machine or platform.machine(),
                   cores=cores or os.cpu_count() or 0,
                   simd=[f for f in SIMD_FLAGS if f in flags])


def _device_model(path: str = "/proc/device-tree/model") -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\0\n ") or None
    except OSError:
        return None


def jetson_release(text: str | None = None, path: str = "/etc/nv_tegra_release") -> str | None:
    """``"R36.3.0"`` from ``/etc/nv_tegra_release`` (``# R36 (release), REVISION: 3.0, ...``),
    or ``None`` when this is not a Jetson."""
    if text is None:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return None
    first = text.splitlines()[0] if text.strip() else ""
    parts = [p.strip() for p in first.lstrip("# ").split(",")]
    major = parts[0].split()[0] if parts and parts[0] else ""
    revision = next((p.split(":", 1)[1].strip() for p in parts if p.startswith("REVISION")), "")
    return f"{major}.{revision}" if major and revision else (major or None)


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (not imported), or ``None``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class TensorRTStatus:
    importable: bool
    version: str | None
    detail: str
    hint: str | None = None


def system_tensorrt(patterns: tuple[str, ...] = ("/usr/lib/python3*/dist-packages/tensorrt",
                                                 "/usr/lib/python3/dist-packages/tensorrt*")
                    ) -> list[str]:
    """Where the system Python has TensorRT (JetPack's ``python3-libnvinfer``)."""
    return sorted({p for pattern in patterns for p in glob.glob(pattern)})


def in_isolated_venv(prefix: str | None = None, base_prefix: str | None = None) -> bool:
    """Whether this Python is a venv that does not see the system site-packages."""
    prefix = prefix or sys.prefix
    base_prefix = base_prefix or sys.base_prefix
    if prefix == base_prefix:
        return False
    try:
        cfg = (Path(prefix) / "pyvenv.cfg").read_text()
    except OSError:
        return True
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() != "true"
    return True


def tensorrt_status(system_copies: list[str] | None = None, isolated: bool | None = None
                    ) -> TensorRTStatus:
    """Whether ``import tensorrt`` works here; if not, and the system Python has it while this
    venv cannot see it, the ``--system-site-packages`` hint."""
    try:
        import tensorrt

        return TensorRTStatus(True, str(tensorrt.__version__), "importable")
    except Exception as exc:  # ImportError, or a broken install (missing libnvinfer)
        reason = f"not importable ({type(exc).__name__}: {exc})"
    copies = system_tensorrt() if system_copies is None else system_copies
    isolated = in_isolated_venv() if isolated is None else isolated
    hint = None
    if copies and isolated:
        hint = (f"the system Python has TensorRT ({copies[0]}) but this venv cannot see it: "
                f"recreate it with {VENV_HINT}")
    elif not copies:
        hint = ("on a Jetson, install JetPack 6 (TensorRT 10.3 for the system Python: sudo apt "
                "install nvidia-jetpack), then use a venv made with --system-site-packages")
    return TensorRTStatus(False, None, reason, hint)


def cuda_status() -> dict[str, Any]:
    """CUDA runtime and driver versions and GPU 0 (name, compute capability), where visible."""
    out: dict[str, Any] = {"runtime": None, "driver": None, "gpu": None, "detail": ""}
    try:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]
        err, version = cudart.cudaRuntimeGetVersion()
        if int(err) == 0:
            out["runtime"] = f"{version // 1000}.{version % 1000 // 10}"
        err, version = cudart.cudaDriverGetVersion()
        if int(err) == 0:
            out["driver"] = f"{version // 1000}.{version % 1000 // 10}"
    except Exception as exc:  # no cuda-python, or no driver
        out["detail"] = f"cuda-python: {type(exc).__name__}: {exc}"
    if out["runtime"] is None:
        out["runtime"] = _cuda_toolkit_version()
    from .export.trt_build import gpu_info

    gpu = gpu_info()
    if gpu is not None:
        out["gpu"] = {"name": gpu[0], "compute_capability": gpu[1]}
    return out


def _cuda_toolkit_version(path: str = "/usr/local/cuda/version.json") -> str | None:
    try:
        import json

        return str(json.loads(Path(path).read_text())["cuda"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class SerialPort:
    path: str
    description: str
    accessible: bool
    group: str | None
    detail: str


def port_access(path: str, *, st: os.stat_result | None = None, uid: int | None = None,
                groups: list[int] | None = None) -> tuple[bool, str | None, str]:
    """Whether this user may open ``path`` read-write, its group and why (not) in words.

    Decided from the mode bits (as the kernel does for a non-root user), so it is testable with
    a made-up ``st``; root may open anything.
    """
    try:
        st = st or os.stat(path)
    except OSError as exc:
        return False, None, f"cannot stat ({exc.strerror})"
    uid = os.geteuid() if uid is None else uid
    groups = list(os.getgroups()) + [os.getegid()] if groups is None else groups
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    rw = stat.S_IRUSR | stat.S_IWUSR
    if uid == 0:
        return True, group, "root"
    if st.st_uid == uid and st.st_mode & rw == rw:
        return True, group, "owner"
    if st.st_gid in groups and st.st_mode & (stat.S_IRGRP | stat.S_IWGRP) == (
            stat.S_IRGRP | stat.S_IWGRP):
        return True, group, f"member of {group}"
    if st.st_mode & (stat.S_IROTH | stat.S_IWOTH) == (stat.S_IROTH | stat.S_IWOTH):
        return True, group, "world read-write"
    return False, group, (f"not a member of {group}: sudo usermod -aG {group} $USER, then log "
                          "out and in")


def serial_ports() -> list[SerialPort]:
    """Serial ports pyserial lists, plus the usual device nodes, with access for this user."""
    found: dict[str, str] = {}
    try:
        from serial.tools import list_ports

        for p in list_ports.comports():
            found[p.device] = p.description if p.description != "n/a" else ""
    except Exception:  # pyserial missing or a platform it cannot list
        pass
    for pattern in SERIAL_GLOBS:
        for path in glob.glob(pattern):
            found.setdefault(path, "")
    ports = []
    for path, description in sorted(found.items()):
        ok, group, detail = port_access(path)
        ports.append(SerialPort(path, description, ok, group, detail))
    return ports


@dataclass
class Report:
    cpu: CpuInfo
    jetson: str | None
    python: str
    runtimes: dict[str, str | None]
    tensorrt: TensorRTStatus
    cuda: dict[str, Any]
    serial: list[SerialPort]
    export: dict[str, Any] | None = None
    usable_backends: list[str] = field(default_factory=list)

    @property
    def can_run(self) -> bool:
        """The named export can run here; without one, some backend can."""
        if self.export is not None:
            return bool(self.export.get("backend"))
        return bool(self.usable_backends)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "can_run": self.can_run}


def usable_backends(runtimes: dict[str, str | None], trt: TensorRTStatus,
                    cuda: dict[str, Any]) -> list[str]:
    """Backends that could run an export here (TensorRT needs a GPU and cuda-python too)."""
    out = []
    if trt.importable and cuda.get("gpu") and runtimes.get("cuda-python"):
        out.append("tensorrt")
    out += [name for name in ("openvino", "onnxruntime") if runtimes.get(name)]
    return out


def plan_status(directory: Path) -> dict[str, Any] | None:
    """The TensorRT plan built beside the export at ``directory`` (its record ``engine.json``):
    what it was built with, its engine check, and whether it may run the export (``problem``
    empty) or why not; ``None`` when no plan was built there (or it is not an export)."""
    from .export.engine_record import ENGINE_FILE, device_plan, plan_problem
    from .export.manifest import MANIFEST_FILE, load_manifest

    if not (directory / MANIFEST_FILE).is_file() or not (directory / ENGINE_FILE).is_file():
        return None
    try:
        manifest = load_manifest(directory)
        record = device_plan(manifest)
    except PaceEdgeError as exc:
        return {"file": ENGINE_FILE, "problem": str(exc)}
    if record is None:
        return None
    return {"file": record.plan, "precision": record.precision,
            "tensorrt_version": record.tensorrt_version, "gpu_name": record.gpu_name,
            "compute_capability": record.compute_capability, "check": record.check,
            "description": record.describe(), "problem": plan_problem(manifest, record)}


def export_status(directory: Path) -> dict[str, Any]:
    """The backend ``auto`` picks for the export or bundle at ``directory``, and why; or why
    nothing can run it here (``backend`` ``None``); and the device-built plan, if any."""
    from .runtimes.select import select_backend

    directory = Path(directory)
    plan = plan_status(directory)
    try:
        selection = select_backend(directory)
    except PaceEdgeError as exc:
        return {"path": str(directory), "backend": None, "reason": str(exc), "plan": plan}
    return {"path": str(directory), "backend": selection.backend, "reason": selection.reason,
            "artefact": selection.artefact.path if selection.artefact else None, "plan": plan}


def collect(export: Path | None = None) -> Report:
    """Every check, for this machine (and ``export``, when given)."""
    runtimes = {name: package_version(name) for name in
                ("onnxruntime", "openvino", "cuda-python", "pyserial", "numpy")}
    runtimes["torch"] = package_version("torch")  # a reference backend; never imported here
    trt = tensorrt_status()
    cuda = cuda_status()
    report = Report(
        cpu=cpu_info(), jetson=jetson_release(), python=f"{platform.python_version()} "
        f"({sys.executable})", runtimes=runtimes, tensorrt=trt, cuda=cuda,
        serial=serial_ports(), export=None if export is None else export_status(export),
    )
    report.usable_backends = usable_backends(runtimes, trt, cuda)
    return report


def render(report: Report) -> str:
    """The report as people read it."""
    cpu, cuda, trt = report.cpu, report.cuda, report.tensorrt
    gpu = cuda.get("gpu")
    jetson = f"L4T {report.jetson}" if report.jetson else "no (/etc/nv_tegra_release absent)"
    gpu_text = (f"{gpu['name']} (compute capability {gpu['compute_capability']})" if gpu
                else "none visible")
    lines = [
        f"{'cpu':<12} {cpu.model} ({cpu.architecture}, {cpu.cores} logical cores)",
        f"{'simd':<12} {', '.join(cpu.simd) or 'none of ' + ', '.join(SIMD_FLAGS[:4])}",
        f"{'jetson':<12} {jetson}",
        f"{'python':<12} {report.python}",
        *(f"{name:<12} {version or 'not installed'}" for name, version in report.runtimes.items()),
        f"{'tensorrt':<12} {trt.version if trt.importable else trt.detail}",
        *([f"{'':<12} hint: {trt.hint}"] if trt.hint else []),
        f"{'cuda':<12} runtime {cuda.get('runtime') or '-'}, driver {cuda.get('driver') or '-'}",
        f"{'gpu':<12} {gpu_text}",
        f"{'backends':<12} {', '.join(report.usable_backends) or 'none usable here'}",
    ]
    for port in report.serial:
        state = "ok" if port.accessible else "NOT accessible"
        what = f" ({port.description})" if port.description else ""
        lines.append(f"{'serial':<12} {port.path}{what}, group {port.group}: {state} "
                     f"({port.detail})")
    if not report.serial:
        lines.append(f"{'serial':<12} no serial ports found (USB adapters appear as "
                     "/dev/ttyUSB*, /dev/ttyACM*)")
    if report.export is not None:
        e = report.export
        verdict = f"runs on {e['backend']}" if e["backend"] else "CANNOT run here"
        lines += [f"{'export':<12} {e['path']}: {verdict}", f"{'':<12} {e['reason']}"]
        plan = e.get("plan")
        if plan:
            state = f"NOT usable: {plan['problem']}" if plan["problem"] else "usable"
            lines.append(f"{'plan':<12} {plan.get('description', plan['file'])}: {state}")
    return "\n".join(lines)


__all__ = [
    "SIMD_FLAGS",
    "VENV_HINT",
    "CpuInfo",
    "Report",
    "SerialPort",
    "TensorRTStatus",
    "collect",
    "cpu_info",
    "cuda_status",
    "export_status",
    "in_isolated_venv",
    "jetson_release",
    "package_version",
    "plan_status",
    "port_access",
    "render",
    "serial_ports",
    "system_tensorrt",
    "tensorrt_status",
    "usable_backends",
]
