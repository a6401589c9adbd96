"""Hardening run: every family of hostile conditions, one table.

One row per family, columns: cases; clean refusals or detections (the case ended as it must:
refused with its reason, damage detected and reported, or, for kills and concurrency,
recovered equal to a clean build / read equal to a known answer); silent wrong answers
(data served or accepted that differ from the truth, with no error); crashes (a traceback,
a dead process, a failed re-run); data lost (archived data gone or changed).

- **hostile files**: hostile variants (the generator of benchmarks/hostile_gen.py, shared
  with the fuzz tests, driven by a seeded numpy RNG: header card edits, column-format edits,
  value edits, obspar parameter edits, byte flips, truncations, gzip damage) of the real
  2003 L0 files, simulated L0 files, simulated obspars and simulated aspect L1 files go
  through the real update path (``dir:`` sources; L0 in batches into a copy of an archive
  built from the other files, an obspar or aspect L1 variant alone into an archive of
  another obsid), in a forked process (a crash shows as its exit code). Each case is
  classified: clean refusal (named in the report, kept in ``rejected/`` with its reason),
  accepted and read back equal (L0: store read == file read holding astropy's TIME values;
  obspar, aspect L1: archived bytes and astropy read equal to the offered file), not
  delivered (a variant whose OBS_ID names another obsid), unhandled crash, wrong accept,
  archive data changed (rows or files of the base archive differ, anything left in staging,
  or `check_archive` not clean). An accepted variant read back equal is a clean case but
  not a refusal (the row's note counts them).
- **bombs**: gzip bombs of a real L0 file (the file then up to 512 MB of zeros in its
  gzip stream, in a second gzip member, or behind a header claiming 2**30 rows), offered
  the same way; an accepted bomb is a silent wrong answer.
- **L0 kills**: ``mica update aca-l0`` killed (kill -9, with its worker processes) at random
  times, run again: repaired when the index and files equal an uninterrupted run's.
- **update-kind kills**: `tests.hardening.test_kill_updates.kill_kind` for every other
  update kind (acq-stats, guide-stats, vv, aca-dark --with-inputs, asp-l1, obspar, rebuild
  store).
- **concurrency**: the reader loops and updater pairs of
  `tests.hardening.test_concurrency`: every read is a case (clean when equal to a known
  answer), and each pair of updaters.
- **HTTP faults**, **full disk**, **store corruption**, **index corruption**,
  **read-only**, **symlink/umask**: the test files of those cases (`PYTEST_FAMILIES`),
  run by pytest, each test a case: passed is clean, a failed assertion (the test compares
  with the known answer) a silent wrong answer, any other exception a crash; the full disk
  row adds `disk_full_run`. Store corruption runs `STORE_CORRUPTION_TESTS` when one exists.

Usage: ``python benchmarks/bench_hardening.py [--cases 2000] [--bombs 12] [--kills 30]
[--update-kills 10] [--seed 17] [--families NAME,...]`` (the disk-full cases need root for
``mount -t tmpfs``; the read-only ones a second user, which root makes).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from hostile_gen import (
    FITS_MUTATIONS,
    TEXT_MUTATIONS,
    build_l0_base,
    build_obsid_base,
    index_state,
    mutate,
    mutate_text,
    raw_bytes,
    run_l0_batch,
    run_obsid_case,
)

from mica import config
from mica.engine.index_check import check_archive
from mica.products.aca_l0 import L0
from mica.sim.aca_l0 import plan_l0_files, write_l0_file

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO / "tests" / "data" / "aca_l0_2003"
if str(REPO) not in sys.path:  # the kill and concurrency harnesses are tests/hardening's
    sys.path.insert(0, str(REPO))
SIM_WINDOW = ("2012:001:00:00:00", "2012:001:01:00:00")


def _in_process(call: tuple, conn: Any) -> None:
    conn.send(call[0](*call[1:]))


def forked(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a forked process: a segfault or hang is None."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_in_process, args=((fn, *args), child))
    proc.start()
    result = parent.recv() if parent.poll(600) else None
    proc.join(10)
    if result is None:
        proc.kill()
    return result


def run_batch_forked(
    base: Path, variants: dict[str, bytes], work: Path, span: tuple
) -> dict[str, str]:
    """`run_l0_batch` in a forked process: a segfault or hang is a crash of every case."""
    result = forked(run_l0_batch, base, variants, work, span)
    return result or {n: "crash process died or hung" for n in variants}


def run_attributed(
    run: Any, base: Path, variants: dict[str, bytes], work: Path, span: tuple
) -> dict[str, str]:
    """A batch; when it crashed, each of its variants again alone, so a crash is charged to
    the file that caused it (the others of the batch were not offered by that update)."""
    out = run(base, variants, work / "all", span)
    if len(variants) > 1 and any(v.startswith("crash") for v in out.values()):
        for k, (name, data) in enumerate(variants.items()):
            out.update(run(base, {name: data}, work / f"one-{k}", span))
    return out


def fuzz(cases: int, seed: int, where: Path, forked_runs: bool = True) -> Counter:
    """Generate ``cases`` variants (two thirds L0, one sixth each obspar and aspect L1), run
    them; counts by outcome (and details)."""
    rng = np.random.default_rng(seed)
    real = sorted(REAL_DATA.glob("*.fits.gz"))
    sim_dir = where / "sim-files"
    sim_dir.mkdir(parents=True)
    for plan in plan_l0_files(*SIM_WINDOW):
        write_l0_file(plan, sim_dir)
    sim = sorted(sim_dir.glob("*.fits*"))
    pools = []
    for kind, files in (("real", real), ("sim", sim)):
        targets = files[1::3]  # held out of the base archive: one variant of each per batch
        base = build_l0_base([f for f in files if f not in targets], where / f"base-{kind}")
        times = [L0.name_time(p.name) for p in files]
        pools.append((base, targets, (min(times), max(times))))
    counts: Counter = Counter()
    details: list[str] = []

    def tally(name: str, outcome: str) -> None:
        counts[outcome.split(" ", 1)[0]] += 1
        if not outcome.startswith(("refused", "accepted", "elsewhere")):
            details.append(f"{name}: {outcome}")

    n_obsid = cases // 6
    done, batch = 0, 0
    while done < cases - 2 * n_obsid:
        base, targets, span = pools[batch % 2]
        variants = {}
        for target in targets[: cases - 2 * n_obsid - done]:
            kind = FITS_MUTATIONS[int(rng.integers(0, len(FITS_MUTATIONS)))]
            variants[L0.archive_name(target.name)] = mutate(target, kind, rng)
        work = where / f"batch-{batch}"
        run = run_batch_forked if forked_runs else run_l0_batch
        for name, outcome in run_attributed(run, base, variants, work, span).items():
            tally(name, outcome)
        shutil.rmtree(work, ignore_errors=True)
        done += len(variants)
        batch += 1
    for family in ("obspar", "asp"):
        base, mirror, files = build_obsid_base(family, where / f"base-{family}")
        for k in range(n_obsid):
            target = files[int(rng.integers(0, len(files)))]
            if family == "obspar":
                kind = TEXT_MUTATIONS[int(rng.integers(0, len(TEXT_MUTATIONS)))]
                data = mutate_text(target, kind, rng)
            else:
                kind = FITS_MUTATIONS[int(rng.integers(0, len(FITS_MUTATIONS)))]
                data = mutate(target, kind, rng)
            work = where / f"{family}-{k}"
            # in this process: a forked child cannot use the engine's forkserver worker pool
            # (the parent's forkserver is not its child); an exception is still a crash
            outcome = run_obsid_case(family, base, mirror, target, data, work)
            tally(f"{kind} of {target.name}", outcome)
            shutil.rmtree(work, ignore_errors=True)
            done += 1
    counts["cases"] = done
    counts["details"] = details  # type: ignore[assignment]
    return counts


# --- the table --------------------------------------------------------------------------------
@dataclass
class Row:
    """One family's line of the table, and the cases that did not end clean."""

    family: str
    cases: int = 0
    clean: int = 0
    silent: int = 0
    crashes: int = 0
    lost: int = 0
    note: str = ""
    details: list[str] = field(default_factory=list)


COLUMNS = ("cases", "clean refusals or detections", "silent wrong answers", "crashes", "data lost")


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table (the README's)."""
    lines = [
        "| family | " + " | ".join(COLUMNS) + " | notes |",
        "|---|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for r in rows:
        cells = (r.cases, r.clean, r.silent, r.crashes, r.lost)
        lines.append(f"| {r.family} | " + " | ".join(f"{c:,}" for c in cells) + f" | {r.note} |")
    return "\n".join(lines)


def hostile_files(cases: int, seed: int, where: Path) -> Row:
    """`fuzz`'s counts as a row."""
    counts = fuzz(cases, seed, where)
    return Row(
        "hostile files",
        counts["cases"],
        counts["refused"],
        counts["wrong_accept"],
        counts["crash"],
        counts["data_changed"],
        f"{counts['accepted']:,} accepted and read back equal, "
        f"{counts['elsewhere']:,} not delivered (another obsid)",
        counts["details"],  # type: ignore[arg-type]
    )


# --- bombs ------------------------------------------------------------------------------------
BOMBS = ("trailing zeros", "zero member", "huge rows")


def _gzip_stream(parts: list[bytes], zeros: int) -> bytes:
    """``parts`` then ``zeros`` zero bytes as one gzip member, compressed as a stream."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(p) for p in parts]
    block = bytes(1 << 24)
    out += [packer.compress(block) for _ in range(zeros // len(block))]
    return b"".join([*out, packer.flush()])


def bomb(path: Path, kind: str, zeros: int) -> bytes:
    """A gzip bomb of the L0 file ``path`` inflating by ``zeros`` bytes (`BOMBS`)."""
    raw = raw_bytes(path)
    if kind == "trailing zeros":
        return _gzip_stream([raw], zeros)
    if kind == "zero member":
        return gzip.compress(raw, mtime=0) + _gzip_stream([], zeros)
    # the table header claims 2**30 rows, the data that follow are zeros
    at = raw.index(b"NAXIS2  =")  # the table's: the primary HDU has no axes
    card = f"{'NAXIS2':<8}= {2**30:>20}".encode().ljust(80)
    return _gzip_stream([raw[:at] + card + raw[at + 80 :]], zeros)


def _one_process(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` run with no worker pool: a forked child cannot use a forkserver its parent
    started (the obsid fuzz cases run in this process)."""

    def run(*args: Any) -> Any:
        os.environ[config.WORKERS] = "1"
        return call(*args)

    return run


def bombs(n: int, seed: int, where: Path) -> Row:
    """``n`` bombs (kinds in turn, 16 to 512 MB of zeros drawn from ``seed``), each offered
    alone to an archive of the other real files, in a forked process."""
    rng = np.random.default_rng(seed + 2)
    real = sorted(REAL_DATA.glob("*.fits.gz"))
    target = real[1]
    base = build_l0_base([f for f in real if f != target], where / "base")
    times = [L0.name_time(p.name) for p in real]
    row = Row("bombs", note="sizes inflated: 16-512 MB of zeros")
    for k in range(n):
        kind, zeros = BOMBS[k % len(BOMBS)], int(2 ** rng.integers(24, 30))
        variants = {L0.archive_name(target.name): bomb(target, kind, zeros)}
        got = forked(
            _one_process(run_l0_batch),
            base,
            variants,
            where / f"bomb-{k}",
            (min(times), max(times)),
        )
        outcome = (got or {"": "crash process died or hung"}).popitem()[1]
        row.cases += 1
        what = outcome.split(" ", 1)[0]
        if what == "refused":
            row.clean += 1
        elif what in ("accepted", "wrong_accept"):
            row.silent += 1
        elif what == "data_changed":
            row.lost += 1
        else:
            row.crashes += 1
        if what != "refused":
            row.details.append(f"{kind}, {zeros >> 20} MB: {outcome}")
        shutil.rmtree(where / f"bomb-{k}", ignore_errors=True)
    return row


# --- kill -9 and disk full -------------------------------------------------------------------
def _mica(*args: str, **kw: Any) -> subprocess.Popen:
    """``python -m mica.cli <args>`` (this interpreter's mica), stderr kept."""
    cmd = [sys.executable, "-m", "mica.cli", *args]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def kill_runs(n: int, seed: int, where: Path) -> Row:
    """``mica update aca-l0`` killed at random times (its process group), then run again."""
    rng = np.random.default_rng(seed + 1)
    up = where / "kill-up"
    up.mkdir(parents=True)
    for plan in plan_l0_files(*SIM_WINDOW):
        write_l0_file(plan, up)
    span = ["--start", SIM_WINDOW[0], "--stop", SIM_WINDOW[1], "--quiet"]
    clean = where / "kill-clean"
    args = ["update", "aca-l0", "--source", f"dir:{up}", *span]
    first = _mica(*args, "--data-root", str(clean))
    assert first.wait() == 0, first.stderr.read() if first.stderr else ""
    expected = index_state(L0, clean)
    row = Row("L0 kills", note="kill -9 of the update and its worker processes, then a re-run")
    for k in range(n):
        root = where / f"kill-{k}"
        run = [*args, "--data-root", str(root)]
        proc = _mica(*run, start_new_session=True)
        time.sleep(float(rng.uniform(0.3, 4.0)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        again = _mica(*run)
        _, err = again.communicate(timeout=600)
        state = index_state(L0, root)
        row.cases += 1
        if again.returncode != 0:
            row.crashes += 1
            row.details.append(f"kill {k}: the re-run exited {again.returncode}: {err[-300:]!r}")
        elif not check_archive(L0, data_root=root).ok:
            row.clean += 1  # detected: the check names what is left to repair
            row.details.append(f"kill {k}: mica check not clean after the re-run")
        elif expected.keys() - state.keys():
            row.lost += 1
            row.details.append(f"kill {k}: files missing: {sorted(expected.keys() - state)}")
        elif state != expected:
            row.silent += 1
            row.details.append(f"kill {k}: rows or files differ from an uninterrupted run")
        else:
            row.clean += 1
        shutil.rmtree(root, ignore_errors=True)
    return row


def update_kind_kills(kills: int, seed: int, where: Path) -> Row:
    """`kill_kind` of every update kind: ``kills`` seeded kill points each."""
    from tests.hardening.test_kill_updates import KIND_NAMES, build_archive, kill_kind

    os.environ[config.WORKERS] = "1"  # the kills fork this process: no worker pool in it
    archive = build_archive(where)
    row = Row("update-kind kills", note=f"{kills} each of {', '.join(KIND_NAMES)}; seed {seed}")
    columns = {"repaired": "clean", "detected": "clean", "wrong": "silent", "crash": "crashes"}
    for name in KIND_NAMES:
        for said, outcome, saw in kill_kind(archive, name, kills, seed, where / name):
            row.cases += 1
            attr = columns.get(outcome, "lost")
            setattr(row, attr, getattr(row, attr) + 1)
            if outcome != "repaired":
                row.details.append(f"{said}: {outcome}: {saw[:300]}")
    return row


def concurrency(where: Path) -> Row:
    """The reader loops (each read a case) and the updater pairs of `test_concurrency`."""
    from tests.hardening import test_concurrency as conc

    os.environ[config.WORKERS] = "1"
    root, upstream = conc.build_archive(where / "base")
    row = Row("concurrency")
    loops: dict[str, tuple[Callable[[Path], dict], int]] = {
        "rebuild store": (conc.during_rebuild_store, 1),
        "check --repair": (conc.during_check_repair, 1),
        "update vv": (conc.during_update_vv, 2),
        "new asp-l1 default": (lambda work: conc.during_new_default(work, upstream), 2),
    }
    reads = []
    for k, (name, (loop, answers)) in enumerate(loops.items()):
        work = where / f"loop-{k}" / "archive"
        shutil.copytree(root, work, symlinks=True)
        counts = loop(work)
        row.cases += counts["reads"]
        row.silent += counts["n_torn"] + counts["n_back"]
        row.crashes += counts["n_crashes"]
        row.clean += counts["reads"] - counts["n_torn"] - counts["n_back"] - counts["n_crashes"]
        reads.append(f"{counts['reads']:,} during {name}")
        row.details += [f"{name}: {w}" for w in conc.never_torn(counts, answers)]
    pairs: dict[str, Callable[[Path, Path, Path], list]] = {
        "second updater refused": conc.second_updater_refused,
        "second updater waits": conc.second_updater_waits,
        "asp-l1 and vv at once": lambda w, u, t: [
            f"V&V ahead {a} s: equal to neither order"
            for a, equal in zip(conc.AHEAD, conc.asp_l1_and_vv_at_once(w, u, t))
            if not equal
        ],
        "vv planned before a new default": lambda w, u, t: (
            [] if conc.vv_planned_before_a_new_default(w, u, t) == ["vv, asp-l1"] else ["torn"]
        ),
    }
    for k, (name, pair) in enumerate(pairs.items()):
        work = where / f"pair-{k}" / "archive"
        shutil.copytree(root, work, symlinks=True)
        wrong = pair(work, upstream, work.parent)
        row.cases += 1
        row.clean += not wrong
        row.silent += bool(wrong)
        row.details += [f"{name}: {w}" for w in wrong]
    row.note = "reads: " + ", ".join(reads) + f"; {len(pairs)} pairs of updaters"
    return row


def disk_full_run(where: Path) -> Row:
    """A simulated day into a 30 MB tmpfs, then 200 MB: exit 1 without a traceback, then a
    clean re-run."""
    row = Row("full disk")
    mnt = where / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(mnt)]).returncode:
        row.note = "the tmpfs run skipped (mount not permitted)"
        return row
    try:
        root = mnt / "aca0"
        args = [
            "update",
            "aca-l0",
            "--source",
            "sim",
            "--start",
            "2012:001",
            "--stop",
            "2012:002",
            "--days-at-once",
            "0.25",
            "--data-root",
            str(root),
            "--quiet",
        ]
        full = _mica(*args)
        _, err = full.communicate(timeout=600)
        subprocess.run(["mount", "-o", "remount,size=200m", str(mnt)], check=True)
        again = _mica(*args)
        again.communicate(timeout=600)
        row.cases = 1
        if b"Traceback" in err or full.returncode != 1:
            row.crashes = 1
            row.details.append(f"full: exit {full.returncode}: {err[-300:]!r}")
        elif again.returncode != 0 or not check_archive(L0, data_root=root).ok:
            row.lost = 1
            row.details.append(f"after remount: exit {again.returncode}, check not clean")
        else:
            row.clean = 1
        row.note = "a day of L0 into 30 MB: exit 1 naming the folder, then complete in 200 MB"
        return row
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


# --- families run by pytest -------------------------------------------------------------------
#: Where the store-corruption cases live once they land (issue 25: digests of every chunk):
#: the family runs whichever exists; while none does, its row says so.
STORE_CORRUPTION_TESTS = (
    "tests/hardening/test_store_verify.py",
    "tests/engine/test_store_verify.py",
)
#: family -> (test files, pytest -k expression or None)
PYTEST_FAMILIES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "HTTP faults": (("tests/hardening/test_hostile_sources.py",), "cda"),
    "full disk": (("tests/hardening/test_disk_full.py",), None),
    "store corruption": (STORE_CORRUPTION_TESTS, None),
    "index corruption": (("tests/hardening/test_index_integrity.py",), None),
    "read-only": (("tests/hardening/test_read_only.py",), None),
    "symlink/umask": (("tests/hardening/test_links_and_modes.py",), None),
}


def pytest_family(name: str, where: Path, row: Row | None = None) -> Row:
    """The tests of family ``name`` (`PYTEST_FAMILIES`) run by pytest, each a case; added to
    ``row`` when given."""
    files, keyword = PYTEST_FAMILIES[name]
    present = [f for f in files if (REPO / f).exists()]
    row = row or Row(name)
    if not present:
        row.note = f"no cases yet: {' or '.join(files)} is not in this checkout"
        return row
    xml = where / (re.sub(r"\W+", "-", name) + ".xml")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"]
    cmd += [*present, *(["-k", keyword] if keyword else [])]
    subprocess.run(cmd, cwd=REPO, capture_output=True, timeout=3600)
    skipped = 0
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        label = case.get("name", "?")
        failure, error = case.find("failure"), case.find("error")
        if case.find("skipped") is not None:
            skipped += 1
            continue
        row.cases += 1
        if failure is None and error is None:
            row.clean += 1
            continue
        message = (failure if failure is not None else error).get("message", "")
        if failure is not None and message.startswith(("AssertionError", "assert")):
            row.silent += 1
        else:
            row.crashes += 1
        row.details.append(f"{label}: {message[:300]}")
    tests = f"{', '.join(Path(f).name for f in present)}" + (f" -k {keyword}" if keyword else "")
    row.note = "; ".join(n for n in (row.note, tests, f"{skipped} skipped" if skipped else "") if n)
    return row


FAMILIES = (
    "hostile files",
    "bombs",
    "L0 kills",
    "update-kind kills",
    "concurrency",
    "HTTP faults",
    "full disk",
    "store corruption",
    "index corruption",
    "read-only",
    "symlink/umask",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="hostile file variants")
    parser.add_argument("--bombs", type=int, default=12)
    parser.add_argument("--kills", type=int, default=30, help="kills of an L0 update")
    parser.add_argument("--update-kills", type=int, default=10, help="kills per update kind")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, of: {FAMILIES}"
    )
    opts = parser.parse_args()
    chosen = [f.strip() for f in opts.families.split(",") if f.strip()]
    unknown = set(chosen) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families: {sorted(unknown)}")
    runs: dict[str, Callable[[Path], Row]] = {
        "hostile files": lambda w: hostile_files(opts.cases, opts.seed, w),
        "bombs": lambda w: bombs(opts.bombs, opts.seed, w),
        "L0 kills": lambda w: kill_runs(opts.kills, opts.seed, w),
        "update-kind kills": lambda w: update_kind_kills(opts.update_kills, opts.seed, w),
        "concurrency": concurrency,
        "full disk": lambda w: pytest_family("full disk", w, disk_full_run(w)),
    }
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory(prefix="mica-hardening-") as tmp:
        for k, name in enumerate(f for f in FAMILIES if f in chosen):
            where = Path(tmp) / f"family-{k}"
            where.mkdir()
            run = runs.get(name, lambda w, name=name: pytest_family(name, w))
            t1 = time.time()
            rows.append(run(where))
            print(f"{name}: {time.time() - t1:.0f} s", file=sys.stderr, flush=True)
            shutil.rmtree(where, ignore_errors=True)
    print(table(rows))
    print(f"\n{time.time() - t0:.0f} s; seed {opts.seed}")
    for row in rows:
        for line in row.details[:20]:
            print(f"  {row.family}: {line}")
    summary = {r.family: [r.cases, r.clean, r.silent, r.crashes, r.lost] for r in rows}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
