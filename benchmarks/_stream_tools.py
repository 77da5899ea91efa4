"""Pieces shared by the stream scripts (soak, real-baud figures): a small synthetic export, the
emulator in its own process (``pace-edge simulate``), CPU hogs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pace_edge.streaming.emulator.emulator import DEFAULTS, default_coefficients

LASER_NM = 785.0
QUERY = "SPEC.READ?"


def tiny_export(workdir: Path) -> Path:
    """An x86 FP32 export of a tiny PACE trained briefly on SYNTHETIC spectra (reused when
    ``workdir`` already holds one). The stream's ceiling here is the link, not the model."""
    out = workdir / "tiny-x86"
    if (out / "manifest.json").is_file():
        return out
    from pace_edge.cli.main import main
    from pace_edge.data import make_synthetic
    from pace_edge.model import preset
    from pace_edge.preprocess import Pipeline
    from pace_edge.train import Recipe
    from pace_edge.train.bundle_training import train_bundle

    data = make_synthetic(n_per_class=30, seed=1)
    bundle = workdir / "tiny-bundle"
    train_bundle(data, preset("tiny", len(data.classes)),
                 Recipe(epochs=3, batch_size=32, seed=0, augment=False, refit=False),
                 Pipeline.from_spec("despike,baseline:asls,normalize:snv"), out=bundle)
    if main(["export", "--model", str(bundle), "--target", "x86", "--out", str(out)]) != 0:
        raise SystemExit("export of the tiny synthetic model failed")
    return out


class Simulator:
    """``pace-edge simulate`` in a subprocess on ``link``; :meth:`stop` returns what it
    served (frames, and frames per fault kind) as it prints them."""

    def __init__(self, protocol: str, link: Path, *args: str) -> None:
        self.protocol = protocol
        self.port = str(link)
        cmd = [sys.executable, "-m", "pace_edge.cli.main", "simulate", "--protocol", protocol,
               "--link", str(link), *(["--query", QUERY] if protocol == "ascii" else []), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != self.port:
            _, err = self.proc.communicate(timeout=10)
            raise SystemExit(f"pace-edge simulate did not start: {err.strip()}")

    def driver_options(self, timeout: float) -> dict:
        options: dict = {"timeout": timeout}
        if self.protocol == "ascii":
            pixels = DEFAULTS["ascii"]["pixels"]
            options |= {"query": QUERY, "max_count": 2 ** DEFAULTS["ascii"]["bits"] - 1,
                        "wavelength_coefficients": self.coefficients(pixels)}
        return options

    @staticmethod
    def coefficients(pixels: int) -> list[float]:
        return [float(np.float32(c)) for c in default_coefficients(pixels)]

    def stop(self) -> tuple[int, Counter[str]]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        match = re.search(r"served (\d+) frames served \(.*?faults: (.*?);", out)
        if match is None:
            raise SystemExit(f"no summary from pace-edge simulate: {out!r} {err!r}")
        faults: Counter[str] = Counter()
        if match.group(2) != "none":
            for part in match.group(2).split(", "):
                kind, n = part.rsplit(" ", 1)
                faults[kind] = int(n)
        return int(match.group(1)), faults


@contextmanager
def cpu_hogs(n: int) -> Iterator[int]:
    """``n`` busy-looping processes (one per core by default), killed on exit."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield n
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def default_hogs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
