"""The strict-skip rule of CI (tests/conftest.py): under CI=true only the documented skips pass.

Runs pytest on small throw-away test files with this repository's real ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

ALLOWED = '''
import pytest

@pytest.mark.gpu
def test_needs_a_gpu():
    pytest.skip("TensorRT needs an NVIDIA GPU")

def test_needs_shared_data():
    pytest.skip("real COVID-19 Raman data not found at /x/cov (../shared/datasets)")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

def test_runs():
    assert True
'''

OTHER_SKIP = '''
import pytest

def test_broker():
    pytest.skip("mosquitto is not installed")
'''

MODULE_SKIP = '''
import pytest

pytest.importorskip("a_package_that_is_not_installed_xyz")

def test_hidden():
    assert True
'''


def run_pytest(tmp_path: Path, files: dict[str, str],
               ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs a GPU\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_documented_skips_pass_under_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, {"test_allowed.py": ALLOWED}, ci="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped, 1 xfailed" in result.stdout


@pytest.mark.parametrize("ci, expected", [("true", 1), (None, 0)])
def test_other_skips_fail_only_under_ci(tmp_path: Path, ci: str | None, expected: int) -> None:
    result = run_pytest(tmp_path, {"test_allowed.py": ALLOWED, "test_other.py": OTHER_SKIP,
                                   "test_module.py": MODULE_SKIP}, ci=ci)
    assert result.returncode == expected, result.stdout + result.stderr
    if ci:
        summary = result.stdout.split("skips CI does not allow", 1)[1]
        assert "test_other.py::test_broker: Skipped: mosquitto is not installed" in summary
        assert "test_module.py" in summary and "a_package_that_is_not_installed_xyz" in summary
        assert "test_needs_a_gpu" not in summary and "test_needs_shared_data" not in summary
    else:
        assert "skips CI does not allow" not in result.stdout
