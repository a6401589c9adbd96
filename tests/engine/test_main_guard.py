"""An update from a script without ``if __name__ == "__main__":`` works.

Forkserver workers import the main script again; without a guard they re-ran the update,
hit its lock, and the pool broke (BrokenProcessPool). The script is a real file run in a
real interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mica.engine.executors.process import _has_main_guard

BODY = """
import sys
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
report = update_archive(L0, "sim", "2012:125:00:00:00", "2012:125:01:00:00", data_root=sys.argv[1])
print("INGESTED", len(report.ingested), report.ok)
"""


def _run(script: Path, root: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"MICA_WORKERS": "2"}
    return subprocess.run(
        [sys.executable, str(script), str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=script.parent,
    )


@pytest.mark.parametrize("guarded", [False, True])
def test_update_from_a_script(tmp_path, guarded):
    body = textwrap.dedent(BODY)
    if guarded:
        body = "def run():\n" + textwrap.indent(body, "    ")
        body += '\n\nif __name__ == "__main__":\n    run()\n'
    script = tmp_path / "user_script.py"
    script.write_text(body)
    proc = _run(script, tmp_path / "aca0")
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("INGESTED")]
    count, ok = line.split()[1:]
    assert int(count) >= 4 and ok == "True"
    assert "BrokenProcessPool" not in proc.stderr
    warned = "has no 'if __name__ == \"__main__\":' guard" in proc.stderr
    assert warned is not guarded, proc.stderr
    if not guarded:  # the warning points at the user's own line
        assert f"{script}:5: RuntimeWarning" in proc.stderr


def test_main_guard_detection():
    assert _has_main_guard('x = 1\nif __name__ == "__main__":\n    x = 2\n')
    assert _has_main_guard("if '__main__' == __name__:\n    pass\n")
    assert not _has_main_guard("import mica\nmica.run()\n")
    assert not _has_main_guard("def f():\n    if __name__ == '__main__':\n        pass\n")
