"""README.md's commands, run as written.

Convention: a fenced ``bash`` block directly after a line ``<!-- readme-test -->`` (blank lines
between are allowed) is run by this test, exactly as README.md has it, so the two cannot drift.
Mark only blocks that are cheap enough for CI (seconds to a minute) and need nothing CI lacks.
Marked blocks run in README order, each with ``bash -euo pipefail``, one after another in one
working directory, so a block may use what an earlier one wrote. That directory stands in for a
fresh clone with the venv activated, as README's "Fresh machine" section leaves it: links to the
repository's top-level entries, ``.venv`` linked to this test's own interpreter environment and
its ``bin`` first on ``PATH``, and ``../shared`` linked to the real one where it exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = "<!-- readme-test -->"
OUTPUTS = {".venv", "pace-edge-demo", "runs", "exports", "build", ".git"}


def marked_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, script)`` of every bash block that follows a marker line."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == MARKER:
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j >= len(lines) or not re.fullmatch(r"```(bash|sh|shell)", lines[j].strip()):
                raise AssertionError(f"README.md:{i + 1}: {MARKER} must be followed by a "
                                     "```bash block")
            k = j + 1
            while k < len(lines) and lines[k].strip() != "```":
                k += 1
            blocks.append((j + 2, "\n".join(lines[j + 1 : k]) + "\n"))
            i = k
        i += 1
    return blocks


def test_marker_convention() -> None:
    text = "a\n<!-- readme-test -->\n\n```bash\necho 1\necho 2\n```\n```bash\nnot marked\n```\n"
    assert marked_blocks(text) == [(5, "echo 1\necho 2\n")]
    with pytest.raises(AssertionError, match="must be followed by a ```bash block"):
        marked_blocks("<!-- readme-test -->\ntext\n")


def fresh_checkout(tmp_path: Path) -> Path:
    work = tmp_path / "checkout"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in OUTPUTS:
            (work / entry.name).symlink_to(entry)
    (work / ".venv").symlink_to(Path(sys.prefix))
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    return work


BLOCKS = marked_blocks(README.read_text())


def test_readme_has_marked_blocks() -> None:
    assert BLOCKS, f"README.md has no {MARKER} block"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_checkout(tmp_path_factory.mktemp("readme"))


@pytest.mark.parametrize("line, script", BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_block_runs_as_written(checkout: Path, line: int, script: str) -> None:
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = sys.prefix
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"README.md:{line} failed (exit {result.returncode}):\n{script}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
