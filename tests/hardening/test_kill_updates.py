"""kill -9 at seeded random points of every update kind, then the same command again: the
archive ends equal to a clean build.

Kinds: ``mica update acq-stats``, ``guide-stats``, ``vv``, ``aca-dark --with-inputs``,
``asp-l1``, ``obspar`` and ``mica rebuild store`` (L0 ingest kills: `test_crash_l0`). One
small input archive is built once for the module (simulated obspars of three observations,
the aspect L1 of one, four L0 files; a dark calibration's replicas and L0 for the
``dir:`` source) and the folders each kind starts from are copied for each case. V&V runs
without its slot plots (see `_kinds`).
The command runs in a child forked from this process (every module already imported, so it
costs what the update itself costs) through ``mica.cli.main``, the CLI's entry point; the
parent kills it with SIGKILL after a delay drawn (fixed seed, per kind) from the measured
duration of a clean run (a child that finished first shortens that duration, and the
case is drawn again). While it lies dead, whatever readers serve must be what they served
before the update or part of the clean build (some of its rows, some of its files, each
whole; never a temporary or partial file, never a traceback). Then the same command runs
again, here, to completion: the readers' results, the files (paths and digests, store
chunks included) and ``mica check`` (exit 0, 0 problems) must equal the clean build's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from mica import config
from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
from mica.archive.aca_dark import dark_cal
from mica.archive.aca_dark.product import HDR3_PAD
from mica.cli import main
from mica.engine.index import INDEX_NAME
from mica.errors import MicaError, MissingArchiveError
from mica.sim import aca_dark as sim_dark
from mica.sim.aca_l0 import plan_l0_files, write_l0_file
from mica.sim.asp_l1 import write_asp_l1
from mica.stats import acq_stats, guide_stats
from mica.vv import get_rms_data, get_vv, get_vv_files
from mica.vv.product import VV

#: The seed of every kill delay (each kind draws from its own stream of it).
SEED = 25
#: The update kinds, in the order of their seed streams.
KIND_NAMES = ("acq-stats", "guide-stats", "vv", "aca-dark", "asp-l1", "obspar", "rebuild-store")
#: Kill points per kind here (the first of the seed's draws; `benchmarks/bench_hardening.py`
#: ``--update-kills`` runs more of them).
KILLS = 6
#: Three observations with obspars; the last has aspect L1 (one revision, the default).
WINDOW = ("2012:001:07:00:00", "2012:001:11:30:00")
OBSIDS = [59868, 59867, 10003]
ASP_OBSID = 10003
ASP_REVISION = 2
#: The statistics of the two short observations (the time goes in simulating telemetry).
STATS_WINDOW = ("2012:001:07:00:00", "2012:001:11:15:00")
#: The dark calibration 2000043 and the L0 (slots 6-7, 8x8) its temperatures need.
DARK_ID = "2000043"
DARK_DAYS = ("2000:043", "2000:044")
HDR3_SLOTS = (6, 7)
#: Files whose bytes differ between two equal builds (times, SQLite pages, HDF5 metadata);
#: what users read from them is compared instead.
VOLATILE = re.compile(
    r"(\.db3(-wal|-shm)?|update\.lock|archive\.json|^(acq_stats|guide_stats|vv)\.h5(\.digest)?)$"
)
#: A store chunk's name carries its generation: ``<period>.<generation>.h5`` (a store table's:
#: ``<name>.<generation>.h5``).
CHUNK = re.compile(r"^([^.]+)\.\d+\.h5$")


# --- what users read ------------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    """A reader's `MicaError` (nothing served yet, said cleanly): its message."""

    message: str


class Files(dict):
    """Files a reader served: path relative to the archive -> sha256 of the bytes."""


def served(root: Path, paths: list[str] | dict[Any, str]) -> Files:
    """The files ``paths`` as readers return them, checked visible and whole: absolute,
    inside the archive, existing, no hidden (temporary) component."""
    out = Files()
    for path in paths:
        rel = Path(path).relative_to(root)
        assert Path(path).is_absolute() and (root / rel).exists(), path
        assert not any(part.startswith(".") for part in rel.parts), f"temporary path {path}"
        files = sorted(p for p in (root / rel).rglob("*") if p.is_file())
        for file in files if (root / rel).is_dir() else [root / rel]:
            out[str(file.relative_to(root))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


def attempt(read: Callable[[], Any]) -> Any:
    """``read()``, or `Refused` for a `MicaError` (any other exception fails the test)."""
    try:
        return read()
    except MicaError as err:
        return Refused(f"{type(err).__name__}: {err}")


def _reads_obspar(root: Path) -> dict[str, Any]:
    folder = root / "obspar"
    out = {"obsids": attempt(lambda: obspar.get_obsids(*WINDOW, data_root=folder))}
    for obsid in OBSIDS:
        out[f"obspar {obsid}"] = attempt(lambda o=obsid: obspar.get_obspar(o, data_root=folder))
        path = attempt(lambda o=obsid: obspar.get_obspar_file(o, data_root=folder))
        out[f"file {obsid}"] = served(root, [path]) if isinstance(path, str) else path
    return out


def _reads_asp_l1(root: Path) -> dict[str, Any]:
    folder = root / "asp1"
    dirs = attempt(lambda: asp_l1.get_obs_dirs(ASP_OBSID, data_root=folder))
    return {
        "dirs": dirs if not isinstance(dirs, dict) else served(root, [dirs["default"]]),
        "files": attempt(lambda: served(root, asp_l1.get_files(ASP_OBSID, data_root=folder))),
        "processing": attempt(lambda: asp_l1.get_processing(ASP_OBSID, data_root=folder)),
    }


def _reads_table(module: Any, folder: str) -> Callable[[Path], dict[str, Any]]:
    def reads(root: Path) -> dict[str, Any]:
        return {"rows": attempt(lambda: module.get_stats(filter=False, data_root=root / folder))}

    return reads


def _reads_vv(root: Path) -> dict[str, Any]:
    folder = root / "vv"
    return {
        "rows": attempt(lambda: get_rms_data(data_root=folder)),
        "report": attempt(lambda: get_vv(ASP_OBSID, data_root=folder)),
        "files": attempt(lambda: served(root, get_vv_files(ASP_OBSID, data_root=folder))),
        # V&V marks the revision done in the aspect L1 processing table
        "processing": attempt(lambda: asp_l1.get_processing(ASP_OBSID, data_root=root / "asp1")),
    }


def _l0_files(root: Path) -> Any:
    folder = root / "aca0"
    return attempt(
        lambda: served(root, aca_l0.get_files(start=DARK_DAYS[0], stop=DARK_DAYS[1],
                                               data_root=folder))
    )  # fmt: skip


def _reads_l0(root: Path) -> dict[str, Any]:
    folder = root / "aca0"
    out: dict[str, Any] = {"files": _l0_files(root)}
    for slot in HDR3_SLOTS:
        out[f"slot {slot}"] = attempt(
            lambda s=slot: aca_l0.get_slot_data(*DARK_DAYS, s, data_root=folder)
        )
    out["ccd_temp"] = attempt(lambda: aca_hdr3.MSID("ccd_temp", *DARK_DAYS, data_root=folder).vals)
    return out


def _reads_dark(root: Path) -> dict[str, Any]:
    """The calibration and the L0 files (their store chunks are compared as files)."""
    folder = root / "aca_dark"
    cals = attempt(lambda: dark_cal.get_dark_cal_dirs(data_root=folder))
    return {
        "calibrations": cals if isinstance(cals, Refused) else served(root, cals.values()),
        "image": attempt(lambda: dark_cal.get_dark_cal_image(DARK_ID, data_root=folder)),
        "l0 files": _l0_files(root),
    }


# --- the kinds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """One update kind: its command, the folders it starts from and what users read.

    ``inputs`` are copied from the module's archive into each case (and the clean build);
    ``stale`` are removed from the copy (what the command rebuilds); ``settings`` are
    (object, attribute, value) set for the clean build and the kills alike."""

    args: tuple[str, ...]
    reads: Callable[[Path], dict[str, Any]]
    inputs: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    check: tuple[str, ...] = ("check",)
    settings: tuple[tuple[Any, str, Any], ...] = ()


def _kinds(upstream: Path) -> dict[str, Kind]:
    """The kinds; their ``dir:`` sources are folders of ``upstream``."""
    span = ("--start", WINDOW[0], "--stop", WINDOW[1], "--quiet")
    stats = ("--start", STATS_WINDOW[0], "--stop", STATS_WINDOW[1], "--quiet")
    days = ("--start", DARK_DAYS[0], "--stop", DARK_DAYS[1], "--quiet")
    dark, asp = f"dir:{upstream / 'dark'}", f"dir:{upstream / 'asp'}"
    return {
        "acq-stats": Kind(
            ("update", "acq-stats", *stats), _reads_table(acq_stats, "acq_stats"), ("obspar",)
        ),
        "guide-stats": Kind(
            ("update", "guide-stats", *stats), _reads_table(guide_stats, "guide_stats"), ("obspar",)
        ),
        # Without its 8 slot plots (PNG renderings, 90 % of its time): they are written into
        # the revision's staging folder with its report, whose writing the kills still hit.
        "vv": Kind(
            ("update", "vv", *span), _reads_vv, ("obspar", "asp1"), settings=((VV, "plots", False),)
        ),
        "aca-dark": Kind(
            ("update", "aca-dark", "--source", dark, "--with-inputs", *days), _reads_dark
        ),
        "asp-l1": Kind(
            ("update", "asp-l1", "--source", asp, "--obsid", str(ASP_OBSID), "--quiet"),
            _reads_asp_l1,
        ),
        "obspar": Kind(("update", "obspar", "--source", "sim", *span), _reads_obspar),
        "rebuild-store": Kind(
            ("rebuild", "store"),
            _reads_l0,
            ("aca0",),
            ("aca0/store",),
            ("check", "--verify-store"),
        ),
    }


#: The kinds whose clean build is the module's archive itself: kind -> its folder.
BUILT_BY_THE_MODULE = {"obspar": "obspar", "asp-l1": "asp1"}
#: The L0 files of the store's archive (of the calibration's, slots 6-7): the first four.
STORE_FILES = 4


# --- running mica ---------------------------------------------------------------------------
def run_mica(root: Path, args: tuple[str, ...]) -> tuple[int, str]:
    """``mica <args>`` on the archive ``root``, here: (exit code, output)."""
    result = CliRunner().invoke(main, list(args), env={config.ARCHIVE: str(root)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a failure of the test, shown as it is
    return result.exit_code, result.output


@dataclass
class Child:
    """``mica <args>`` in a process forked from this one (the CLI's entry point)."""

    pid: int
    started: float
    done_pipe: int
    status: int | None = None
    finished_after: float | None = None

    @classmethod
    def start(cls, root: Path, args: tuple[str, ...]) -> Child:
        rfd, wfd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 70
            try:
                os.close(rfd)
                sink = open(os.devnull, "w")  # closed by the process's end below
                os.dup2(sink.fileno(), 1)
                os.dup2(sink.fileno(), 2)
                sys.stdout = sys.stderr = sink
                os.environ[config.ARCHIVE] = str(root)
                try:
                    main.main(args=list(args), prog_name="mica")
                    code = 0
                except SystemExit as end:
                    code = end.code if isinstance(end.code, int) else 1
                os.write(wfd, struct.pack("d", time.monotonic()))
            finally:
                os._exit(code)
        os.close(wfd)
        return cls(pid, started, rfd)

    def kill_after(self, delay: float) -> bool:
        """SIGKILL ``delay`` seconds after the start; False when it had finished before."""
        time.sleep(max(0.0, self.started + delay - time.monotonic()))
        if not self._ended():
            os.kill(self.pid, signal.SIGKILL)
            self._reap(os.waitpid(self.pid, 0)[1])
        assert self.status is not None
        killed = os.WIFSIGNALED(self.status) and os.WTERMSIG(self.status) == signal.SIGKILL
        assert killed or os.waitstatus_to_exitcode(self.status) == 0, "the child failed"
        return killed

    def wait(self, timeout: float) -> int:
        """Its exit code (negative: the signal that ended it); SIGKILL after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not self._ended():
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                self._reap(os.waitpid(self.pid, 0)[1])
                break
            time.sleep(0.01)
        assert self.status is not None
        return os.waitstatus_to_exitcode(self.status)

    def _ended(self) -> bool:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self._reap(status)
        return bool(pid)

    def _reap(self, status: int) -> None:
        self.status = status
        end = os.read(self.done_pipe, 8)
        os.close(self.done_pipe)
        if end:
            self.finished_after = struct.unpack("d", end)[0] - self.started


# --- the archive as a user sees it -----------------------------------------------------------
def listing(root: Path) -> dict[str, str]:
    """Every entry under ``root`` but the `VOLATILE` files: relative path (a store chunk's
    generation dropped) -> sha256 of a file, ``-> target`` of a link, ``dir`` of a folder."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if VOLATILE.search(path.name):
            continue
        name = CHUNK.sub(r"\1.h5", path.name) if "store" in rel.parts else path.name
        key = str(rel.parent / name)
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        elif "store" in rel.parts and path.suffix == ".h5":
            out[key] = _chunk_values(path)
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _chunk_values(path: Path) -> str:
    """sha256 of a store chunk's datasets (names and values): its attributes record its
    generation, which differs between two builds of the same values."""
    digest = hashlib.sha256()

    def add(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(node[()]).tobytes())

    with h5py.File(path, "r") as h5:
        h5.visititems(add)
    return digest.hexdigest()


def problems(output: str) -> list[str]:
    """The lines of ``mica check``'s output that count problems other than 0."""
    return [ln for ln in output.splitlines() if re.search(r"\b[1-9]\d* problems?\b", ln)]


def same(got: Any, want: Any) -> bool:
    """Whether two reader results are equal (arrays bit for bit, masks too)."""
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        if not (isinstance(got, np.ndarray) and isinstance(want, np.ndarray)):
            return False
        return (
            got.dtype == want.dtype
            and got.shape == want.shape
            and np.ma.getdata(got).tobytes() == np.ma.getdata(want).tobytes()
            and np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(want))
        )
    return type(got) is type(want) and got == want


def part_of(got: Any, want: Any) -> bool:
    """Whether a reader's result after a kill is part of the clean build's: nothing yet
    (`Refused` or None), some of its rows or files (each whole), or all of it."""
    if got is None or isinstance(got, Refused) or same(got, want):
        return True
    if isinstance(got, Files) and isinstance(want, Files):
        return got.items() <= want.items()
    if isinstance(got, np.ndarray) and isinstance(want, np.ndarray) and want.dtype.names:
        rows = {r.tobytes() for r in np.ma.getdata(want)}
        return got.dtype == want.dtype and all(r.tobytes() in rows for r in np.ma.getdata(got))
    if isinstance(got, list) and isinstance(want, list):
        return all(item in want for item in got)
    return False


@dataclass
class Clean:
    """A clean build of one kind: its listing, readers' results and run time."""

    listing: dict[str, str]
    reads: dict[str, Any]
    seconds: float


#: The module's archive: (root, kinds, seconds of the updates that built it).
Archive = tuple[Path, dict[str, Kind], dict[str, float]]


@contextmanager
def attributes(settings: tuple[tuple[Any, str, Any], ...]) -> Iterator[None]:
    """(object, attribute, value) set for the block (and restored after)."""
    saved = [(target, name, getattr(target, name)) for target, name, _ in settings]
    try:
        for target, name, value in settings:
            setattr(target, name, value)
        yield
    finally:
        for target, name, value in saved:
            setattr(target, name, value)


def build_archive(top: Path) -> Archive:
    """The input archive in ``top/archive`` (obspar, asp1 and aca0, each by its own ``mica
    update``; its ``dir:`` sources in ``top/upstream``), the kinds, and the seconds the
    obspar and asp-l1 updates took (their clean builds). Updates run in this process."""
    upstream = top / "upstream"
    sim_dark.write_replicas(sim_dark.dark_cal_plan(DARK_ID), upstream / "dark")
    l0_files = calibration_l0(upstream / "dark")
    (upstream / "l0").mkdir()
    for path in l0_files[:STORE_FILES]:
        shutil.copyfile(path, upstream / "l0" / path.name)
    (upstream / "asp").mkdir()
    write_asp_l1(ASP_OBSID, ASP_REVISION, upstream / "asp", decimate=50)
    kinds = _kinds(upstream)
    root, seconds = top / "archive", {}
    for name in BUILT_BY_THE_MODULE:
        t0 = time.monotonic()
        code, output = run_mica(root, kinds[name].args)
        seconds[name] = time.monotonic() - t0
        assert code == 0, output
    l0 = ("--source", f"dir:{upstream / 'l0'}", "--start", DARK_DAYS[0], "--stop", DARK_DAYS[1])
    code, output = run_mica(root, ("update", "aca-l0", *l0, "--quiet"))
    assert code == 0, output
    assert obspar.get_obsids(*WINDOW, data_root=root / "obspar") == OBSIDS
    return root, kinds, seconds


def calibration_l0(dest: Path, count: int | None = None) -> list[Path]:
    """Write the simulated L0 files the calibration's temperatures need (slots 6-7, 8x8, in
    time order; the first ``count``) into ``dest``."""
    plan = sim_dark.dark_cal_plan(DARK_ID)
    pad = HDR3_PAD + 60.0
    plans = plan_l0_files(plan.tstart - pad, plan.tstop + pad)
    plans = [p for p in plans if p.slot in HDR3_SLOTS and p.imgsize == 8]
    plans = sorted({p.filename: p for p in plans}.values(), key=lambda p: p.filename)
    dest.mkdir(parents=True, exist_ok=True)
    return [write_l0_file(p, dest) for p in plans[:count]]


def _case(root: Path, kind: Kind, dest: Path) -> Path:
    """A copy of the folders ``kind`` starts from, its ``stale`` ones removed."""
    dest.mkdir(parents=True)
    for name in kind.inputs:
        shutil.copytree(root / name, dest / name, symlinks=True)
    for name in kind.stale:
        shutil.rmtree(dest / name)
    return dest


def clean_build(archive: Archive, name: str, where: Path) -> Clean:
    """The clean build of kind ``name`` in ``where`` (checked clean, every reader serving)."""
    root, kinds, seconds = archive
    kind = kinds[name]
    clean = _case(root, kind, where)
    if name in BUILT_BY_THE_MODULE:
        folder = BUILT_BY_THE_MODULE[name]
        shutil.copytree(root / folder, clean / folder, symlinks=True)
        took = seconds[name]
    else:
        t0 = time.monotonic()
        code, output = run_mica(clean, kind.args)
        took = time.monotonic() - t0
        assert code == 0, output
    code, output = run_mica(clean, kind.check)
    assert code == 0 and not problems(output), output
    reads = kind.reads(clean)
    assert not [k for k, v in reads.items() if isinstance(v, Refused)], reads
    return Clean(listing(clean), reads, took)


# --- one kill ---------------------------------------------------------------------------------
#: A kill's outcomes: the re-run equals the clean build; a reader served what was neither the
#: archive before nor part of the clean build, or the re-run's archive differs from the clean
#: build (silent wrong answers); a reader's traceback or a failed re-run (crashes); mica check
#: reports problems after the re-run (detected); files of the clean build missing (data lost).
OUTCOMES = ("repaired", "wrong", "crash", "detected", "lost")


def kill_once(
    root: Path, kind: Kind, clean: Clean, before: dict, delay: float, work: Path
) -> tuple[tuple[str, str] | None, Child]:
    """One case: a copy of the inputs in ``work``, the command killed at ``delay`` s, read,
    run again, compared: ((outcome of `OUTCOMES`, what it saw), the child), or (None, the
    child) when the command finished before ``delay`` (``child.finished_after`` says when)."""
    _case(root, kind, work)
    child = Child.start(work, kind.args)
    if not child.kill_after(delay):
        shutil.rmtree(work)
        return None, child
    try:
        for key, value in kind.reads(work).items():  # dead: what readers serve now
            if not (same(value, before[key]) or part_of(value, clean.reads[key])):
                return ("wrong", f"while dead, {key} served {value!r:.300}"), child
        code, output = run_mica(work, kind.args)
        if code != 0:
            return ("crash", f"the re-run failed:\n{output}"), child
        code, output = run_mica(work, kind.check)
        if code != 0 or problems(output):
            return ("detected", f"mica check after the re-run:\n{output}"), child
        got = listing(work)
        lost = sorted(clean.listing.keys() - got.keys())
        if lost:
            return ("lost", f"files of the clean build missing: {lost}"), child
        differ = sorted(k for k in got.keys() | clean.listing if got[k] != clean.listing.get(k))
        differ += [k for k, v in kind.reads(work).items() if not same(v, clean.reads[k])]
        if differ:
            return ("wrong", f"differs from the clean build: {differ}"), child
    except Exception as err:  # noqa: BLE001  (a reader's or mica's traceback)
        return ("crash", f"{type(err).__name__}: {err}"), child
    shutil.rmtree(work)
    return ("repaired", ""), child


def kill_kind(archive: Archive, name: str, kills: int, seed: int, where: Path) -> list[tuple]:
    """``kills`` kill points of kind ``name`` (delays drawn with ``seed`` over a clean run's
    duration, shortened when a run finishes first): (where, outcome, what it saw) each."""
    root, kinds, _ = archive
    kind = kinds[name]
    out: list[tuple] = []
    with attributes(kind.settings):
        clean = clean_build(archive, name, where / "clean")
        rng = np.random.default_rng([seed, KIND_NAMES.index(name)])
        before = kind.reads(_case(root, kind, where / "before"))
        duration, case = clean.seconds, 0
        while len(out) < kills:
            case += 1
            assert case <= 3 * kills, f"seed {seed}: {name} kept finishing before its kill"
            delay = float(rng.uniform(0.0, duration))
            said = f"seed {seed}, {name}, case {case}: kill at {delay:.3f} s of {duration:.3f} s"
            result, child = kill_once(root, kind, clean, before, delay, where / f"case-{case}")
            if result is None:  # it finished first: the clean run's time was long
                duration = child.finished_after or delay
                continue
            out.append((said, *result))
    return out


# --- the tests --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    """The module's input archive; its updates and the kills run in one process: a child
    forked from pytest cannot use a worker pool whose forkserver another test of the
    session started (kills of an L0 update with its worker processes: `test_crash_l0`)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.WORKERS, "1")
        yield build_archive(tmp_path_factory.mktemp("kill-updates"))


@pytest.mark.parametrize("name", KIND_NAMES)
def test_kill_then_rerun_equals_a_clean_build(archive, tmp_path, name):
    cases = kill_kind(archive, name, KILLS, SEED, tmp_path)
    failed = [f"{said}: {outcome}: {saw}" for said, outcome, saw in cases if outcome != "repaired"]
    assert not failed, "\n".join(failed)


def killed_creating(db: Path) -> Path:
    """``db`` as a writer killed while creating it leaves it: a transaction of its rollback
    journal (the mode before WAL) half written, the journal hot."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("PRAGMA cache_size=1")  # pages reach the file before the commit
            conn.execute("BEGIN")
            conn.execute("CREATE TABLE filler (x)")
            conn.executemany("INSERT INTO filler VALUES (?)", [(bytes(1000),)] * 200)
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    assert Path(f"{db}-journal").exists()
    return db


LEFT = ["empty file", "database without the table", "killed creating it"]


@pytest.mark.parametrize("left", LEFT)
def test_processing_table_not_yet_created_reads_empty(archive, tmp_path, left):
    """An asp-l1 update killed between creating ``processing_asp_l1.db3`` and its table, or
    while creating it (kill points above found both): readers and V&V planning read no
    processing rows, not a raw `sqlite3.OperationalError`; the re-run fills the table."""
    from mica.products.asp_l1 import PROC_DB

    root, kinds, _ = archive
    work = _case(root, kinds["vv"], tmp_path / "case")
    want = asp_l1.get_processing(ASP_OBSID, data_root=work / "asp1")
    db = work / "asp1" / PROC_DB
    for path in db.parent.glob(PROC_DB + "*"):
        path.unlink()
    if left == "killed creating it":
        killed_creating(db)
    else:
        db.touch()
    if left == "database without the table":
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    assert asp_l1.get_processing(ASP_OBSID, data_root=work / "asp1") == []
    code, output = run_mica(work, ("update", "vv", "--quiet"))
    assert code == 0 and "0 obsid revisions computed" in output, output
    code, output = run_mica(work, kinds["asp-l1"].args)
    assert code == 0, output
    assert asp_l1.get_processing(ASP_OBSID, data_root=work / "asp1") == want


def test_index_killed_while_created_is_no_archive_yet(archive, tmp_path):
    """An obspar update killed while SQLite created its index (a kill point above found it):
    readers raise `MissingArchiveError` saying so, not SQLite's "attempt to write a readonly
    database"; ``mica check`` names it (exit 1) and ``--repair`` rolls it back; the re-run
    archives everything."""
    root, kinds, _ = archive
    work = tmp_path / "case"
    (work / "obspar").mkdir(parents=True)
    killed_creating(work / "obspar" / INDEX_NAME)
    for read in (
        lambda: obspar.get_obsids(*WINDOW, data_root=work / "obspar"),
        lambda: obspar.get_obs_dirs(ASP_OBSID, data_root=work / "obspar"),
    ):
        with pytest.raises(MissingArchiveError, match="killed creating it"):
            read()
    code, output = run_mica(work, ("check",))
    assert code == 1 and "an update was killed creating it" in output, output
    code, output = run_mica(work, ("check", "--repair"))
    assert code == 0 and "rolled back the interrupted creation" in output, output
    assert not Path(f"{work / 'obspar' / INDEX_NAME}-journal").exists()
    code, output = run_mica(work, kinds["obspar"].args)
    assert code == 0, output
    assert obspar.get_obsids(*WINDOW, data_root=work / "obspar") == OBSIDS
