"""A seeded ~100-case run of the hardening generator (benchmarks/bench_hardening.py).

Hostile variants of real 2003 and simulated L0 files (header cards, column formats, values,
byte flips, truncations, gzip damage) go through the real update path; every case must be a
clean refusal or an accept that reads back equal, and no refusal may change archived data.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_hardening.py"
_spec = importlib.util.spec_from_file_location("bench_hardening", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_hundred_hostile_files_refused_or_read_back_equal(tmp_path: Path) -> None:
    counts = bench.fuzz(100, seed=5, where=tmp_path, forked=False)
    assert counts["cases"] == 100
    assert counts["refused"] > 0  # the generator does produce hostile files
    details = counts["details"]
    assert counts["crash"] == 0, details  # nothing escapes the update as an exception
    assert counts["refused"] + counts["accepted"] == 100, details
    assert counts["wrong_accept"] == 0 and counts["data_changed"] == 0, details
    assert counts["accepted"] > 0  # untouched-by-the-edit variants still go in
