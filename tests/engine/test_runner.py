"""The update runner, its executors, the atomic writes, the registry-built command line."""

from __future__ import annotations

import fcntl
import math
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mica.cli import main
from mica.engine import registry
from mica.engine.atomic import copy_atomic, is_leftover, write_bytes_atomic, write_folder_atomic
from mica.engine.executors import InlineExecutor, ProcessExecutor, UnitError
from mica.engine.index import INDEX_NAME, archive_problem
from mica.engine.lock import ArchiveBusy, UpdateLock
from mica.engine.registry import LAYOUTS, REGISTRY, ProductEntry, products, register_product
from mica.engine.report import UpdateReport
from mica.engine.runner import Job, Unit, run_update
from mica.errors import DamagedIndexError
from mica.products.aca_l0 import L0
from mica.sources import Source


# --- executors ---------------------------------------------------------------------------
@pytest.mark.parametrize("executor", [InlineExecutor(), ProcessExecutor(workers=2)])
def test_executor_map_ordered_and_errors_returned(executor):
    """Results in unit order; the failing unit's error comes back in its place."""
    out = list(executor.map(math.sqrt, [4.0, 9.0, -1.0, 16.0, 25.0, 36.0]))
    assert [out[i] for i in (0, 1, 3, 4, 5)] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert isinstance(out[2], UnitError) and isinstance(out[2].error, ValueError)
    assert "math domain error" in str(out[2]) and "Traceback" in out[2].trace


def test_process_pool_shut_down_before_the_last_result():
    """A caller that stops at the last result (as ``zip`` does) leaves no worker behind for
    the garbage collector to shut down at some later moment."""
    before = set(multiprocessing.active_children())
    results = ProcessExecutor(workers=2).map(math.sqrt, [1.0, 4.0, 9.0, 16.0, 25.0])
    assert [r for _, r in zip(range(5), results)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert set(multiprocessing.active_children()) <= before


def test_inline_executor_is_lazy():
    """Unit k+1's step runs only when the runner asks for its result."""
    seen: list[int] = []
    results = InlineExecutor().map(lambda u: seen.append(u) or u, [1, 2, 3])
    assert seen == [] and next(results) == 1 and seen == [1]


# --- the runner --------------------------------------------------------------------------
def _write_in_staging(unit: Unit) -> str:
    """A step: its staging folder exists and is empty; it may fail."""
    assert unit.staging.is_dir() and not any(unit.staging.iterdir())
    if unit.data == "bad":
        raise ValueError(f"unit {unit.key} cannot be computed")
    (unit.staging / "x").write_text(unit.data)
    return (unit.staging / "x").read_text().upper()


class _Job(Job):
    name = "toy"
    product = L0  # any product the dir: source serves: the runner resolves the source for it
    unit = "toy unit"

    def __init__(self, root: Path, data: list[str], record_failures: bool = True):
        self.root, self.data, self.record_failures = root, data, record_failures
        self.stagings: list[Path] = []

    def recover(self) -> list[str]:
        left = self.root / "half-done"
        if left.exists():
            left.unlink()
            return ["removed half-done"]
        return []

    def plan(self, source: Source, report: UpdateReport) -> Iterator[Unit]:
        for i, d in enumerate(self.data):
            yield Unit(f"k{i}", f"unit {i}", self.staging(i), d)

    def step(self, source: Source) -> Callable[[Unit], Any]:
        return _write_in_staging

    def commit(self, unit: Unit, result: str, report: UpdateReport) -> None:
        self.stagings.append(unit.staging)
        with open(self.root / "log", "a") as fh:  # commits, in unit order
            fh.write(f"{unit.key}={result}\n")
        report.done[unit.key] = result

    def failed(self, unit: Unit, error: UnitError, report: UpdateReport) -> None:
        if not self.record_failures:
            super().failed(unit, error, report)
        report.failed[unit.key] = str(error)


def test_runner_commits_in_order_and_records_failures(tmp_path):
    root = tmp_path / "toy"
    root.mkdir()
    (root / "half-done").write_text("left by a killed run")
    (root / "staging" / "u00007").mkdir(parents=True)  # staging of a killed run
    calls: list[tuple[int, int, str]] = []
    job = _Job(root, ["a", "bad", "c"])
    report = run_update(job, f"dir:{tmp_path}", progress=lambda *a: calls.append(a))
    assert (root / "log").read_text() == "k0=A\nk2=C\n"
    assert report.done == {"k0": "A", "k2": "C"}
    assert report.failed == {"k1": "unit k1 cannot be computed"} and not report.ok
    assert report.recovered == ["removed half-done"]
    assert calls == [(0, 3, "unit 0"), (1, 3, "unit 1"), (2, 3, "unit 2"), (3, 3, "done")]
    assert all(not p.exists() for p in job.stagings) and not (root / "staging").exists()
    assert "toy: 2 toy units updated" in report.summary()
    assert "FAILED toy unit k1: unit k1 cannot be computed" in report.summary()


def test_runner_stops_on_unrecorded_failure_keeping_earlier_commits(tmp_path):
    root = tmp_path / "toy"
    job = _Job(root, ["a", "bad", "c"], record_failures=False)
    with pytest.raises(ValueError, match="unit k1 cannot be computed"):
        run_update(job, f"dir:{tmp_path}")
    assert (root / "log").read_text() == "k0=A\n"  # unit 0 committed, unit 2 never run
    assert not (root / "staging").exists()


def test_runner_stopped_by_a_failure_shuts_its_process_pool_down(tmp_path):
    """The update's error propagates (its traceback, held by ``raises``, keeps the runner's
    frames) after the pool's workers are gone, not when the garbage collector gets to them."""
    before = set(multiprocessing.active_children())
    job = _Job(tmp_path / "toy", ["a", "bad", "c", "d", "e", "f"], record_failures=False)
    with pytest.raises(ValueError, match="unit k1 cannot be computed"):
        run_update(job, f"dir:{tmp_path}", executor=ProcessExecutor(workers=2))
    assert set(multiprocessing.active_children()) <= before


def test_runner_takes_the_update_lock(tmp_path):
    root = tmp_path / "toy"
    with UpdateLock(root), pytest.raises(ArchiveBusy, match="another update"):
        run_update(_Job(root, ["a"]), f"dir:{tmp_path}")
    assert not (root / "log").exists()


def test_a_readers_probe_does_not_refuse_an_update(tmp_path):
    """A reader asking whether an update runs (`refuse_if_busy`) holds a shared lock for a
    moment: an update taking the lock then waits that moment out; an update's exclusive lock
    still refuses it."""
    root = tmp_path / "toy"
    with UpdateLock(root):  # the lock file, as an update leaves it
        pass
    probe = os.open(root / "update.lock", os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
    threading.Timer(0.02, os.close, [probe]).start()  # (closing releases it)
    with UpdateLock(root) as lock:
        assert lock.fd is not None
        assert (root / "update.lock").read_text() == str(os.getpid())
    with UpdateLock(root), pytest.raises(ArchiveBusy, match="another update"):
        with UpdateLock(root):
            pass


def test_a_lock_file_not_yet_taken_is_no_archive_without_its_index(tmp_path):
    """A first update creates its lock file, then takes it, then creates the index: a reader
    in between finds no archive, not a damaged one; once an update has held the lock (its pid
    written) and left no index, the index is missing."""
    root = tmp_path / "aca0"
    root.mkdir()
    (root / "update.lock").write_bytes(b"")
    assert archive_problem(root) == f"no {INDEX_NAME}"
    with UpdateLock(root):
        pass
    with pytest.raises(DamagedIndexError, match="the index file is missing"):
        archive_problem(root)


def test_runner_with_process_executor(tmp_path):
    root = tmp_path / "toy"
    job = _Job(root, ["a", "b", "bad", "d", "e"])
    report = run_update(job, f"dir:{tmp_path}", executor=ProcessExecutor(workers=2))
    assert list(report.done) == ["k0", "k1", "k3", "k4"] and list(report.failed) == ["k2"]
    assert (root / "log").read_text() == "k0=A\nk1=B\nk3=D\nk4=E\n"


# --- atomic writes -----------------------------------------------------------------------
def test_atomic_writes(tmp_path):
    dest = write_bytes_atomic(tmp_path / "a" / "list.txt", b"obsid\n1\n")
    assert dest.read_bytes() == b"obsid\n1\n"
    copy_atomic(dest, tmp_path / "b" / "copy.txt")
    assert (tmp_path / "b" / "copy.txt").read_bytes() == b"obsid\n1\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "copy.txt", "list.txt"]
    with pytest.raises(IsADirectoryError):
        copy_atomic(tmp_path / "a", tmp_path / "b" / "copy.txt")  # a failed copy ...
    assert (tmp_path / "b" / "copy.txt").read_bytes() == b"obsid\n1\n"  # ... changes nothing
    assert not list(tmp_path.rglob("*.partial"))


def test_folder_install_replaces_whole(tmp_path):
    folder = write_folder_atomic(tmp_path / "2000043", {"a": b"1", "b": b"2"})
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b"]
    write_folder_atomic(folder, {"a": b"new"})
    assert [p.name for p in tmp_path.iterdir()] == ["2000043"]
    assert [p.read_bytes() for p in folder.iterdir()] == [b"new"]
    assert is_leftover(f".2000043.tmp-{os.getpid()}") == "2000043"
    assert is_leftover(".2000043.old-12") == "2000043" and is_leftover("2000043") is None


# --- the registry and the one command line -----------------------------------------------
# Every entry's own checks (its description, layout, `mica update <name> --help`, `mica check`,
# a tiny archive) are the conformance suite's (tests/conformance/test_products.py).
def test_registry_names_every_product_of_every_layout():
    assert set(REGISTRY) == {
        "aca-l0",
        "asp-l1",
        "obspar",
        "aca-dark",
        "acq-stats",
        "guide-stats",
        "vv",
    }
    assert {e.layout for e in products()} == set(LAYOUTS)


def test_register_product_adds_an_entry_and_refuses_an_unknown_layout(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    entry = ProductEntry("extra", "time", "mica.products.aca_l0:L0", "Extra files.")
    register_product(entry)
    assert registry.get("extra") is entry and products()[-1] is entry
    assert products("time")[-1] is entry
    with pytest.raises(ValueError, match="layouts: time, obsid, calib, derived"):
        register_product(ProductEntry("odd", "spiral", "mica.products.aca_l0:L0", "Odd."))
    assert "odd" not in registry.REGISTRY


def test_update_rejects_obsids_with_times():
    result = CliRunner().invoke(
        main, ["update", "asp-l1", "--obsid", "6000", "--stop", "2012:001", "--quiet"]
    )
    assert result.exit_code != 0 and "either --obsid or --start" in result.output
