"""Every command and code block of the README runs as written after the demo.

The blocks run against the documentation's archive (``mica.sim.build.build_docs_archive``, built
the way ``mica demo`` builds its own), placed where the demo leaves it (``mica-demo/archive``
under the working folder), so the README's ``export MICA_ARCHIVE=...`` line is run as written
too. Shell blocks run in bash (``set -e``), each Python block in a fresh interpreter.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mica import config
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", re.S | re.M)
SHELL = {"bash", "sh", "shell"}
#: Blocks that are not commands: the CLI synopsis and the layout tree (text), and the
#: benchmarks (console: minutes each, run by hand).
NOT_RUN = {"text", "console"}


def readme_blocks() -> list[tuple[str, str]]:
    """The README's fenced blocks as (language, text), in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(README.read_text())]


def test_readme_blocks_are_tagged() -> None:
    blocks = readme_blocks()
    assert blocks
    for lang, text in blocks:
        assert lang in SHELL | {"python"} | NOT_RUN, (lang, text[:60])
        if lang == "console":  # only the benchmark scripts are left to run by hand
            cmds = [ln for ln in text.splitlines() if ln.strip()]
            assert all(ln.startswith("python benchmarks/") for ln in cmds), text


def test_readme_first_block_is_the_setup() -> None:
    """The first block is what CI and a new user run: install + demo, then the tests."""
    lang, text = readme_blocks()[0]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lang == "bash"
    assert lines[0] == 'python -m pip install -e ".[test]" && mica demo'
    assert len(lines) == 2 and lines[1].startswith("python -m pytest -q"), lines
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert lines[1] in ci, "CI runs the README's test command"


@pytest.fixture(scope="module")
def demo_dir(docs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder as `mica demo` leaves it: ``mica-demo/archive`` is the archive."""
    work = tmp_path_factory.mktemp("readme-work")
    (work / "mica-demo").mkdir()
    (work / "mica-demo" / "archive").symlink_to(docs_archive, target_is_directory=True)
    return work


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MICA_ARCHIVE", None)  # the README's export line must set it
    env.pop(config.WORKERS, None)  # a user's default: validation in worker processes
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    return env


def test_readme_runs_after_the_demo(demo_dir: Path) -> None:
    blocks = readme_blocks()[1:]  # the set-up block is what CI runs (checked above)
    shell = [text for lang, text in blocks if lang in SHELL]
    python = [text for lang, text in blocks if lang == "python"]
    assert shell and python
    assert "export MICA_ARCHIVE=" in shell[0], "the first command after the demo sets the archive"
    # The shell blocks in one session, as a user types them one after the other.
    script = "set -euo pipefail\n" + "\n".join(shell)
    done = subprocess.run(
        ["bash", "-c", script], cwd=demo_dir, env=_env(), capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (demo_dir / "temps.png").stat().st_size > 10_000
    assert (demo_dir / "out.csv").read_text().count("\n") > 100
    assert (demo_dir / "temps.csv").read_text().count("\n") > 100
    # Each Python block in a fresh interpreter, MICA_ARCHIVE as the export line set it.
    env = _env() | {"MICA_ARCHIVE": str(demo_dir / "mica-demo" / "archive")}
    for text in python:
        done = subprocess.run(
            [sys.executable, "-c", text], cwd=demo_dir, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, text + "\n" + done.stderr[-3000:]
    assert (demo_dir / "tempccd.png").stat().st_size > 10_000
