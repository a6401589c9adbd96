"""Readers during writers, and two writers at once: never a torn read, never a mixed archive.

A reader process (forked from this one) reads in a loop while ``mica rebuild store``,
``mica check --repair``, ``mica update vv`` and ``mica update asp-l1`` (a new revision
moving the default link) run here; each read is compared with the known answers, the
archive before and after the writer: it must be one of them (and, once the new one was
seen, never the old one again), and a read never raises (but for the `MicaError` saying
there is no V&V yet). Two updaters of one product at once: the second exits saying which update
runs, or with ``--wait`` waits for it; an asp-l1 and a V&V update at once end equal to one
run after the other. The archives are small copies of one module archive: a few seconds a
case.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mica import config
from mica.archive import aca_hdr3, aca_l0, asp_l1
from mica.sim.asp_l1 import write_asp_l1
from mica.vv import get_rms_data, get_vv
from mica.vv.product import VV
from tests.hardening.test_kill_updates import (
    ASP_OBSID,
    DARK_DAYS,
    HDR3_SLOTS,
    STORE_FILES,
    WINDOW,
    Child,
    Refused,
    attempt,
    attributes,
    calibration_l0,
    listing,
    problems,
    run_mica,
    same,
)
from tests.hardening.test_read_only import ForkedCall

Reads = dict[str, Any]
#: Reader rounds each loop must at least make (it reads on until the writer is done).
MIN_ROUNDS = 10
#: The update lock file in a product folder (`mica.engine.lock.UpdateLock`).
LOCK_NAME = "update.lock"


# --- the reader process -----------------------------------------------------------------------
def _reader_loop(read: Callable[[], Reads], answers: list[Reads], stop: Path, ready: Path) -> dict:
    """Read until ``stop`` exists: rounds, reads, reads matching no answer (torn), reads
    gone back to an older answer, exceptions (the first few of each, and their numbers),
    answers seen."""
    rounds, reads, torn, back, crashes, seen = 0, 0, [], [], [], set()
    newest: dict[str, int] = {}
    while not stop.exists():
        try:
            got = read()
        except Exception as err:  # noqa: BLE001  (a reader's traceback: counted, shown)
            crashes.append(f"{type(err).__name__}: {err}")
            got = {}
        reads += len(got)
        for key, value in got.items():
            match = [i for i, answer in enumerate(answers) if same(value, answer[key])]
            if not match:
                torn.append(f"round {rounds}: {key} = {value!r:.300}")
                continue
            seen.add(match[-1])
            if match[-1] < newest.get(key, 0):
                back.append(f"round {rounds}: {key} went back to answer {match[-1]}")
            newest[key] = max(newest.get(key, 0), match[-1])
        rounds += 1
        ready.touch()
    counts = {"rounds": rounds, "reads": reads, "seen": sorted(seen)}
    for name, found in (("torn", torn), ("back", back), ("crashes", crashes)):
        counts[name], counts[f"n_{name}"] = found[:5], len(found)
    return counts


@contextmanager
def reading(read: Callable[[], Reads], answers: list[Reads], where: Path) -> Iterator[dict]:
    """``read()`` in a loop in a forked process for the duration of the block (which starts
    after its first round); the loop's counts fill the yielded dict at the end."""
    stop, ready = where / "stop-reading", where / "first-round-read"
    reader = ForkedCall.start(lambda: _reader_loop(read, answers, stop, ready))
    counts: dict = {}
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline, "the reader never read"
            time.sleep(0.01)
        yield counts
    finally:
        stop.touch()
        result = reader.result()
    counts.update(result)


def never_torn(counts: dict, answers: int) -> list[str]:
    """What a reader loop's counts show wrong (none: every read one of ``answers`` known
    answers, in order, the newest one read, at least `MIN_ROUNDS` rounds)."""
    wrong = counts["crashes"] + counts["torn"] + counts["back"]
    if counts["rounds"] < MIN_ROUNDS:
        wrong.append(f"only {counts['rounds']} reader rounds")
    if counts["seen"][-1:] != [answers - 1]:
        wrong.append(f"the newest answer was never read: {counts['seen']}")
    return wrong


# --- the archive ------------------------------------------------------------------------------
def build_archive(top: Path) -> tuple[Path, Path]:
    """(archive, upstream) in ``top``: obspar of `WINDOW`, aspect L1 revision 1 of
    `ASP_OBSID` and four L0 files with their store, each by its ``mica update`` (in this
    process); ``upstream/asp<r>`` serve each revision."""
    upstream, root = top / "upstream", top / "archive"
    for revision in (1, 2):
        (upstream / f"asp{revision}").mkdir(parents=True)
        write_asp_l1(ASP_OBSID, revision, upstream / f"asp{revision}", decimate=50)
    calibration_l0(upstream / "l0", STORE_FILES)
    for args in (
        ("update", "obspar", "--source", "sim", "--start", WINDOW[0], "--stop", WINDOW[1]),
        ("update", "asp-l1", "--source", f"dir:{upstream / 'asp1'}", "--obsid", "10003"),
        ("update", "aca-l0", "--source", f"dir:{upstream / 'l0'}", "--start", DARK_DAYS[0],
         "--stop", DARK_DAYS[1]),
    ):  # fmt: skip
        code, output = run_mica(root, (*args, "--quiet"))
        assert code == 0, output
    return root, upstream


def _new_revision(upstream: Path) -> tuple[str, ...]:
    """The ``mica update asp-l1`` that archives revision 2 of the obsid, its new default."""
    asp2 = upstream / "asp2"
    return ("update", "asp-l1", "--source", f"dir:{asp2}", "--obsid", str(ASP_OBSID), "--quiet")


#: The V&V update; its slot plots are left out (seconds of rendering in the staging folder).
VV_UPDATE = ("update", "vv", "--quiet")
WITHOUT_PLOTS = ((VV, "plots", False),)


def _reads_l0(root: Path) -> Callable[[], Reads]:
    aca0 = root / "aca0"

    def read() -> Reads:
        out: Reads = {f"slot {s}": aca_l0.get_slot_data(*DARK_DAYS, s, data_root=aca0)
                      for s in HDR3_SLOTS}  # fmt: skip
        out["ccd_temp"] = aca_hdr3.MSID("ccd_temp", *DARK_DAYS, data_root=aca0).vals
        return out

    return read


# --- readers during writers -------------------------------------------------------------------
def during_rebuild_store(work: Path) -> dict:
    """The store deleted and rebuilt three times under the reader, each read compared with
    the files' data (served from the files, then from the new chunks): the reader's counts."""
    read = _reads_l0(work)
    with reading(read, [read()], work.parent) as counts:
        for _ in range(3):
            shutil.rmtree(work / "aca0" / "store")
            code, output = run_mica(work, ("rebuild", "store"))
            assert code == 0, output
    code, output = run_mica(work, ("check", "--verify-store"))
    assert code == 0 and not problems(output), output
    return counts


def during_check_repair(work: Path) -> dict:
    """A deleted and a truncated store chunk, mended by ``mica check --verify-store
    --repair`` under the reader, three times: the reader's counts."""
    read = _reads_l0(work)
    chunks = sorted((work / "aca0" / "store").rglob("*.h5"))
    with reading(read, [read()], work.parent) as counts:
        for _ in range(3):
            chunks[0].unlink()
            # truncated under a new name, then renamed over it: a read that has the chunk
            # open keeps reading the whole one (a truncation in place under an open read is
            # not a store's damage but a race with the reader)
            cut = chunks[-1].with_name("truncated")
            cut.write_bytes(chunks[-1].read_bytes()[:200])
            os.replace(cut, chunks[-1])
            code, output = run_mica(work, ("check", "--verify-store", "--repair"))
            assert code == 0 and "repaired: rebuilt 2 store chunks" in output, output
            chunks = sorted((work / "aca0" / "store").rglob("*.h5"))
    code, output = run_mica(work, ("check", "--verify-store"))
    assert code == 0 and not problems(output), output
    return counts


def _reads_vv(root: Path) -> Callable[[], Reads]:
    def read() -> Reads:
        return {
            "rows": attempt(lambda: get_rms_data(data_root=root / "vv")),
            "report": attempt(lambda: get_vv(ASP_OBSID, data_root=root / "vv")),
        }

    return read


def during_update_vv(work: Path) -> dict:
    """V&V of the obsid under the reader, each read compared with no V&V and with the
    whole V&V: the reader's counts."""
    read = _reads_vv(work)
    before = read()  # no V&V archive yet
    assert all(isinstance(v, Refused) for v in before.values()), before
    (work / "vv").mkdir()  # the V&V folder as the update makes it first: no report in it yet
    made = read()
    (work / "vv").rmdir()
    assert "VVLookupError" in made["report"].message and made["rows"] == before["rows"], made
    after_root = work.parent / "after"
    shutil.copytree(work, after_root, symlinks=True)
    with attributes(WITHOUT_PLOTS):
        code, output = run_mica(after_root, VV_UPDATE)
        assert code == 0, output
        after = _reads_vv(after_root)()
        shutil.rmtree(after_root)
        with reading(read, [before, made, after], work.parent) as counts:
            code, output = run_mica(work, VV_UPDATE)
            assert code == 0, output
    return counts


def _reads_asp_l1(root: Path) -> Callable[[], Reads]:
    folder = root / "asp1"

    def names(paths: list[str]) -> list[str]:
        """The files' paths in the archive, each checked there (bytes: the kill tests)."""
        assert all(Path(p).is_file() for p in paths), paths
        return [str(Path(p).relative_to(root)) for p in paths]

    def read() -> Reads:
        dirs = asp_l1.get_obs_dirs(ASP_OBSID, data_root=folder)
        return {
            "default": Path(dirs["default"]).name,
            "files": names(asp_l1.get_files(ASP_OBSID, data_root=folder)),
            "all files": names(asp_l1.get_files(ASP_OBSID, revision="all", data_root=folder)),
        }

    return read


def during_new_default(work: Path, upstream: Path) -> dict:
    """Revision 2 of the obsid archived under the reader, becoming the default, each read
    compared with revision 1's and revision 2's default folder and files: the counts."""
    args = _new_revision(upstream)
    read = _reads_asp_l1(work)
    before = read()
    after_root = work.parent / "after"
    shutil.copytree(work, after_root, symlinks=True)
    code, output = run_mica(after_root, args)
    assert code == 0, output
    after = _reads_asp_l1(after_root)()
    shutil.rmtree(after_root)
    assert before["default"].endswith("_v01") and after["default"].endswith("_v02")
    with reading(read, [before, after], work.parent) as counts:
        code, output = run_mica(work, args)
        assert code == 0, output
    return counts


# --- two writers at once ----------------------------------------------------------------------
def _wait_stopped(pid: int) -> None:
    """Return once process ``pid`` is stopped, or ended (a signal is delivered after
    `os.kill` returns)."""
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "TtZX":
        time.sleep(0.0001)


def _write_locks(pid: int) -> list[str]:
    """The POSIX write locks (SQLite's; the update lock is a ``flock``) process ``pid``
    holds, as /proc/locks lists them."""
    held = []
    for line in Path("/proc/locks").read_text().splitlines():
        # "<n>: POSIX ADVISORY WRITE <pid> <dev>:<inode> <start> <end>" ("->" marks a waiter)
        fields = line.split()
        if fields[1:5] == ["POSIX", "ADVISORY", "WRITE", str(pid)]:
            held.append(line)
    return held


def _lock_held(folder: Path) -> bool:
    """Whether an update holds the lock of ``folder`` (a shared lock cannot be taken)."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextmanager
def _paused_updater(root: Path, args: tuple[str, ...], when: Callable[[], bool]) -> Iterator[Child]:
    """``mica <args>`` in a forked child, stopped (SIGSTOP) as soon as ``when()`` holds;
    continued at the end of the block, which waits for its success."""
    child = Child.start(root, args)
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the first update never got there"
        if when():
            os.kill(child.pid, signal.SIGSTOP)
            _wait_stopped(child.pid)
            # Stopped holding an SQLite write lock (the first connection to an index
            # recovers its log under one, the last one to close checkpoints under one), it
            # would block every writer of that index: let it go on a little.
            if not _write_locks(child.pid):
                break
            os.kill(child.pid, signal.SIGCONT)
        time.sleep(0.001)
    try:
        yield child
    finally:
        os.kill(child.pid, signal.SIGCONT)
    assert child.wait(60.0) == 0, "the first update did not finish"


def _updated_alone(work: Path, args: tuple[str, ...], where: Path) -> dict[str, str]:
    """The listing of a copy of ``work`` after ``mica <args>`` alone."""
    alone = where / "alone"
    shutil.copytree(work, alone, symlinks=True)
    assert run_mica(alone, args)[0] == 0
    return listing(alone)


def second_updater_refused(work: Path, upstream: Path, where: Path) -> list[str]:
    """A second asp-l1 update while one runs: what went wrong (none: it exits 1 naming the
    running update, and the archive ends as after the one update)."""
    args = _new_revision(upstream)
    alone = _updated_alone(work, args, where)
    with _paused_updater(work, args, lambda: _lock_held(work / "asp1")):
        code, output = run_mica(work, args)
    wrong = []
    if not (code == 1 and "another update of" in output and "is running" in output):
        wrong.append(f"the second update: exit {code}: {output}")
    if listing(work) != alone:
        wrong.append("the archive differs from one update's")
    return wrong


def second_updater_waits(work: Path, upstream: Path, where: Path) -> list[str]:
    """A second asp-l1 update with ``--wait`` while one runs: what went wrong (none: it
    waits, then finds nothing left to do; the archive ends as after one update)."""
    args = _new_revision(upstream)
    alone = _updated_alone(work, args, where)
    wrong = []
    with _paused_updater(work, args, lambda: _lock_held(work / "asp1")):
        second = Child.start(work, (*args, "--wait", "60"))
        time.sleep(0.5)
        if os.waitpid(second.pid, os.WNOHANG) != (0, 0):
            wrong.append("the second did not wait")
    if second.wait(60.0) != 0:
        wrong.append("the second update failed")
    if listing(work) != alone:
        wrong.append("the archive differs from one update's")
    return wrong


def _orders(work: Path, upstream: Path, where: Path) -> dict:
    """The archive (listing, reads) after asp-l1 then V&V, and after V&V then asp-l1."""
    asp = _new_revision(upstream)
    orders = {}
    for name, first, second in (("asp-l1, vv", asp, VV_UPDATE), ("vv, asp-l1", VV_UPDATE, asp)):
        root = where / name.replace(", ", "-then-")
        shutil.copytree(work, root, symlinks=True)
        assert run_mica(root, first)[0] == 0 and run_mica(root, second)[0] == 0
        orders[name] = (listing(root), _reads_together(root))
    assert orders["asp-l1, vv"][0] != orders["vv, asp-l1"][0]  # the orders differ
    return orders


def _equal_to(root: Path, orders: dict) -> list[str]:
    """The orders whose archive ``root`` equals."""
    files, reads = listing(root), _reads_together(root)
    return [
        name
        for name, (want_files, want_reads) in orders.items()
        if files == want_files and all(same(reads[k], want_reads[k]) for k in want_reads)
    ]


def _reads_together(root: Path) -> Reads:
    """What users read of the V&V and of the aspect L1 processing."""
    return {**_reads_vv(root)(), "processing": asp_l1.get_processing(data_root=root / "asp1")}


#: How long V&V runs ahead of asp-l1 when both are started together (seconds).
AHEAD = (0.0, 0.05, 0.15)


def asp_l1_and_vv_at_once(work: Path, upstream: Path, where: Path) -> list[list[str]]:
    """A new asp-l1 revision and a V&V update started together, V&V ahead by each of
    `AHEAD`: the orders each archive equals (asp-l1 then V&V, V&V then asp-l1)."""
    with attributes(WITHOUT_PLOTS):
        orders = _orders(work, upstream, where)
        equal = []
        for case, ahead in enumerate(AHEAD):
            root = where / f"together-{case}"
            shutil.copytree(work, root, symlinks=True)
            child = Child.start(root, VV_UPDATE)
            time.sleep(ahead)
            code, output = run_mica(root, _new_revision(upstream))
            assert code == 0, output
            assert child.wait(60.0) == 0, "the V&V update did not finish"
            equal.append(_equal_to(root, orders))
    return equal


def vv_planned_before_a_new_default(work: Path, upstream: Path, where: Path) -> list[str]:
    """A V&V update stopped once it planned (its staging folder made), a new asp-l1 default
    archived meanwhile, the V&V continued: the orders the archive equals."""
    with attributes(WITHOUT_PLOTS):
        orders = _orders(work, upstream, where)
        with _paused_updater(work, VV_UPDATE, lambda: (work / "vv" / "staging").is_dir()):
            code, output = run_mica(work, _new_revision(upstream))
            assert code == 0, output
        return _equal_to(work, orders)


# --- the tests --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """The module's archive; updates in one process (no worker pool started from pytest)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.WORKERS, "1")
        yield build_archive(tmp_path_factory.mktemp("concurrency"))


@pytest.fixture
def work(archive, tmp_path) -> Path:
    """A copy of the module archive."""
    root = tmp_path / "archive"
    shutil.copytree(archive[0], root, symlinks=True)
    return root


def test_readers_during_rebuild_store(work):
    """Every read equals the files' data, from the files or from the new chunks."""
    counts = during_rebuild_store(work)
    assert not never_torn(counts, 1), counts


def test_readers_during_check_repair(work):
    """Every read equals the files' data while chunks are found damaged and rebuilt."""
    counts = during_check_repair(work)
    assert not never_torn(counts, 1), counts


def test_readers_during_update_vv(work):
    """No table then the whole table; no V&V archive, then no report in it, then the whole
    report."""
    counts = during_update_vv(work)
    assert not never_torn(counts, 3), counts


def test_readers_during_a_new_default_revision(work, archive):
    """The default folder and its files are revision 1's or revision 2's, never a mix."""
    counts = during_new_default(work, archive[1])
    assert not never_torn(counts, 2), counts


def test_second_updater_exits_naming_the_running_one(work, archive, tmp_path):
    assert not second_updater_refused(work, archive[1], tmp_path)


def test_second_updater_with_wait_runs_after_the_first(work, archive, tmp_path):
    assert not second_updater_waits(work, archive[1], tmp_path)


def test_asp_l1_and_vv_at_once_equal_one_after_the_other(work, archive, tmp_path):
    equal = asp_l1_and_vv_at_once(work, archive[1], tmp_path)
    assert all(equal), f"V&V ahead by {AHEAD} s: equal to {equal}"


def test_vv_planned_before_a_new_default_revision_installs_as_planned(work, archive, tmp_path):
    """V&V's rows and default link both say the revision it planned was the default, as
    when V&V runs first (its links followed the new default, so the V&V of the revision its
    rows call the default had no link)."""
    assert vv_planned_before_a_new_default(work, archive[1], tmp_path) == ["vv, asp-l1"]
