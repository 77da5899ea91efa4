"""Fixtures and options of the latency suite (``pytest benchmarks --benchmark-only``).

Options: ``--pace-workdir DIR`` (data, bundles and exports; default pytest's cache),
``--pace-rebuild`` (train and export again), ``--pace-threads N`` (default: the CPUs this
process may use), ``--pace-plot FILE`` (PNG of per-call latency distributions),
``--pace-stream-frames N``, ``--pace-stream-rounds N`` and ``--pace-stream-paced-rate R``
(stream benchmarks).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _builds import BenchSession, summary_table  # noqa: E402

from pace_edge.benchmark.run import default_threads  # noqa: E402

_SESSION: list[BenchSession] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pace-edge benchmarks")
    group.addoption("--pace-workdir", type=Path, default=None,
                    help="data, bundles and exports (default: pytest's cache)")
    group.addoption("--pace-rebuild", action="store_true",
                    help="train and export again instead of reusing the work directory")
    group.addoption("--pace-threads", type=int, default=None,
                    help="CPU threads per runtime (default: the CPUs this process may use)")
    group.addoption("--pace-plot", type=Path, default=None,
                    help="write a PNG of per-call latency distributions per group")
    group.addoption("--pace-stream-frames", type=int, default=2000,
                    help="frames per stream benchmark round (default 2000)")
    group.addoption("--pace-stream-rounds", type=int, default=3,
                    help="timed rounds per stream benchmark (default 3)")
    group.addoption("--pace-stream-paced-rate", type=float, default=250.0,
                    help="spectra/s of the paced stream benchmarks (default 250)")


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> Iterator[BenchSession]:
    config = request.config
    root = config.getoption("--pace-workdir")
    if root is None:
        root = Path(config.cache.mkdir("pace-edge-bench"))
    threads = config.getoption("--pace-threads") or default_threads()
    session = BenchSession(Path(root), threads=threads,
                           reuse=not config.getoption("--pace-rebuild"))
    _SESSION.append(session)
    yield session
    session.close()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    from pace_edge.benchmark.report import machine_info as pace_machine

    machine_info["pace_edge"] = pace_machine()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _SESSION or not _SESSION[0].records:
        return
    session = _SESSION[0]
    terminalreporter.section("pace-edge latency summary")
    terminalreporter.write_line(
        f"threads per runtime: {session.threads}; speed-up = eager PyTorch FP32 p50 / build p50 "
        "(and min / min) at the same batch; the eager FP32 row is the baseline (1.00×)"
    )
    for line in summary_table(session.records):
        terminalreporter.write_line(line)
    plot = config.getoption("--pace-plot")
    if plot is not None:
        from pace_edge.benchmark.latency import LatencyStats
        from pace_edge.benchmark.report import plot_latency

        per_group: dict[str, dict[int, LatencyStats]] = {}
        for r in session.records:
            if r.samples_ms is not None and "batch" in r.info:
                label = f"{r.info['preset']} {r.name}"
                per_group.setdefault(label, {})[r.info["batch"]] = LatencyStats(
                    r.info["batch"], 0, r.samples_ms)
        if per_group:
            path = plot_latency(per_group, plot, title="runner.infer latency per call")
            terminalreporter.write_line(f"wrote {path}")
