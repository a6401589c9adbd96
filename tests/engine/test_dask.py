"""The dask.distributed executor on a real LocalCluster (2 worker processes, loopback):
results identical to a serial run, a worker killed mid-run, the client killed and re-run, a
failing unit among good ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from mica.archive import aca_l0  # noqa: E402
from mica.engine.colstore import ColumnStore  # noqa: E402
from mica.engine.derived import update_derived  # noqa: E402
from mica.engine.executors.dask import DaskExecutor  # noqa: E402
from mica.engine.index import ArchiveIndex  # noqa: E402
from mica.engine.index_check import check_archive  # noqa: E402
from mica.engine.product import STAGING_DIR  # noqa: E402
from mica.engine.store_rebuild import rebuild_store  # noqa: E402
from mica.engine.time_update import update_archive  # noqa: E402
from mica.products.aca_l0 import L0  # noqa: E402
from tests.engine.test_derived import SLOT_TABLE, SlotTable, _inputs  # noqa: E402

START, STOP = "2012:001:00:00:00", "2012:001:04:00:00"


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _index_rows(root: Path) -> list[tuple]:
    with ArchiveIndex(L0, root, readonly=True) as index:
        rows = index.query()
    return sorted((r["filename"], r["checksum"], r["tstart"], r["tstop"]) for r in rows)


def _chunks(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every store chunk's datasets by partition (the contents, not the file names)."""
    out = {}
    with ArchiveIndex(L0, root, readonly=True) as index:
        store = ColumnStore(L0, index)
        for part in store.current_chunks(p for p in _parts(index)):
            chunk = store.chunk(part)
            with h5py.File(root / chunk["path"], "r") as h5:
                out[part] = {k: h5[k][...] for k in h5}
    return out


def _parts(index: ArchiveIndex) -> set[str]:
    return {p for r in index.query() for p in L0.partitions(r)}


def _same_archive(a: Path, b: Path) -> None:
    assert _index_rows(a) == _index_rows(b)
    for name, *_ in _index_rows(a):
        with ArchiveIndex(L0, a, readonly=True) as ia, ArchiveIndex(L0, b, readonly=True) as ib:
            ra = ia.query("filename = ?", (name,))[0]
            rb = ib.query("filename = ?", (name,))[0]
        assert L0.path(ra, a).read_bytes() == L0.path(rb, b).read_bytes()
    ca, cb = _chunks(a), _chunks(b)
    assert ca.keys() == cb.keys() and ca
    for part in ca:
        assert ca[part].keys() == cb[part].keys()
        for k in ca[part]:
            assert np.array_equal(ca[part][k], cb[part][k]), (part, k)
    report = check_archive(L0, data_root=a)
    assert report.ok, report.summary()


@pytest.fixture(scope="module")
def serial_l0(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serial") / "aca0"
    report = update_archive(L0, "sim", START, STOP, data_root=root)
    assert report.ingested and report.ok
    return root


def test_l0_ingest_on_the_cluster_equals_serial(client, serial_l0, tmp_path):
    root = tmp_path / "aca0"
    executor = DaskExecutor(client)
    report = update_archive(
        L0, "sim", START, STOP, data_root=root, executor=executor, days_at_once=1 / 24
    )
    # a chunk whose files all came with the one before counts as already archived
    assert report.ok and len(report.done) + len(report.unchanged) == 4
    _same_archive(root, serial_l0)
    got = aca_l0.get_slot_data(START, STOP, 3, data_root=root)
    ref = aca_l0.get_slot_data(START, STOP, 3, data_root=root, use_store=False)
    assert len(got) and np.array_equal(got["IMGRAW"].filled(0), ref["IMGRAW"].filled(0))


def test_store_rebuild_on_the_cluster(client, serial_l0, tmp_path):
    import shutil

    root = tmp_path / "aca0"
    shutil.copytree(serial_l0, root)
    shutil.rmtree(root / "store")
    with ArchiveIndex(L0, root) as index:
        stale = ColumnStore(L0, index).stale_parts()
    assert stale
    report = rebuild_store(L0, root, executor=DaskExecutor(client))
    assert sorted(report.done) == stale and report.ok
    _same_archive(root, serial_l0)
    with ArchiveIndex(L0, root) as index:
        assert ColumnStore(L0, index).stale_parts() == []


@pytest.mark.parametrize(("batch", "hint", "tasks"), [(1, 4, 30), (4, 1, 8), (None, 4, 8)])
def test_derived_batch_with_a_failing_unit(client, tmp_path, batch, hint, tasks):
    """30 units in one task each or in tasks of 4 (the executor's ``batch``, else the
    product's ``units_per_task``), one failing: the same table as serial's."""
    product = SlotTable()
    product.units_per_task = hint
    serial, cluster = tmp_path / "serial", tmp_path / "cluster"
    for archive in (serial, cluster):
        _inputs(archive, range(500, 530))
        (archive / "inputs" / "517.json").write_text("[truncated")
    a = update_derived(product, archive=serial, data_root=serial / "t")
    with distributed.get_task_stream(client) as stream:
        b = update_derived(
            product,
            archive=cluster,
            data_root=cluster / "t",
            executor=DaskExecutor(client, batch=batch),
        )
    assert len(stream.data) == tasks
    assert list(a.failed) == list(b.failed) == [(517, 0)]
    assert list(a.done) == list(b.done) and len(b.done) == 29
    assert np.array_equal(product.table(serial / "t").read(), product.table(cluster / "t").read())


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(client, tmp_path, monkeypatch):
    _inputs(tmp_path, range(600, 640))
    pids = list(client.run(os.getpid).values())
    client.run(lambda: os.environ.__setitem__("SLOT_TABLE_DELAY", "0.1"))
    killed = []

    def kill_one(done, total, label):
        if done == 5 and not killed:
            os.kill(pids[0], signal.SIGKILL)  # its tasks are run again on the other worker
            killed.append(pids[0])

    try:
        report = update_derived(
            SLOT_TABLE,
            archive=tmp_path,
            data_root=tmp_path / "t",
            executor=DaskExecutor(client),
            progress=kill_one,
        )
    finally:
        client.run(lambda: os.environ.pop("SLOT_TABLE_DELAY", None))
    assert killed and report.ok and len(report.done) == 40
    rows = SLOT_TABLE.table(tmp_path / "t").read()
    assert len(rows) == 120 and sorted(set(rows["obsid"].tolist())) == list(range(600, 640))
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_the_client_killed_then_the_rerun_completes(serial_l0, tmp_path):
    root = tmp_path / "aca0"
    cmd = [
        sys.executable,
        "-m",
        "mica.cli",
        "update",
        "aca-l0",
        "--quiet",
        "--source",
        "sim",
        "--start",
        START,
        "--stop",
        STOP,
        "--days-at-once",
        str(1 / 24),
        "--workers",
        "2",
        "--data-root",
        str(root),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with ArchiveIndex(L0, root, readonly=True) as index:
                if len(index.filenames()) >= 10:
                    break
        except Exception:  # noqa: BLE001  (index not created yet)
            pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # (its pipe closed here, not left to the collector)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _same_archive(root, serial_l0)


def test_no_dask_says_how_to_install(tmp_path):
    script = (
        "import sys; sys.modules['distributed'] = None\n"
        "from mica.cli import main\n"
        f"main(['update', 'aca-l0', '--source', 'sim', '--start', '{START}', '--stop', "
        f"'{STOP}', '--workers', '2', '--data-root', r'{tmp_path / 'a'}'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install 'chandra-mica[dask]'" in out.stderr
    assert not (tmp_path / "a").exists()


def test_statistics_and_vv_batches_on_the_cluster_equal_serial(client, docs_archive, tmp_path):
    """The docs archive computed both serially (mica.sim.build.build_docs_archive); here again on
    the cluster, from copies of its inputs."""
    import json
    import shutil

    from mica.stats.acq_product import ACQ_STATS
    from mica.vv.product import VV

    for name in ("obspar", "asp1", "aca0"):
        shutil.copytree(docs_archive / name, tmp_path / name, symlinks=True)
    executor = DaskExecutor(client)
    for product in (ACQ_STATS, VV):
        report = update_derived(
            product, data_root=tmp_path / product.folder, archive=tmp_path, executor=executor
        )
        assert report.ok and report.done, report.summary()
        serial = product.table(docs_archive / product.folder).read()
        cluster = product.table(tmp_path / product.folder).read()
        assert len(serial) and serial.dtype == cluster.dtype
        for name in serial.dtype.names:
            a, b = serial[name], cluster[name]
            assert np.allclose(a, b, equal_nan=True) if a.dtype.kind == "f" else (a == b).all(), (
                name
            )
    reports = sorted((tmp_path / "vv").rglob("vv_report.json"))
    assert reports
    for path in reports:
        ref = docs_archive / path.relative_to(tmp_path)
        assert json.loads(path.read_text()) == json.loads(ref.read_text())


def test_chunk_builds_read_the_arrays_validation_kept(serial_l0, tmp_path):
    """On a cluster a file is decoded once: the validating worker keeps its store arrays in
    staging and the chunk build reads them, not the file (here the files are gone); arrays
    kept for another checksum are never used."""
    import shutil

    from mica.engine.colstore import build_chunk
    from mica.engine.ingest import validate_files

    root = tmp_path / "aca0"
    shutil.copytree(serial_l0, root)
    cache = tmp_path / "staging" / "arrays"
    with ArchiveIndex(L0, root) as index:
        rows = index.query()
        copies = tmp_path / "copies"
        copies.mkdir()
        for r in rows:
            shutil.copy(L0.path(r, root), copies / r["filename"])
        validated = validate_files(L0, sorted(copies.iterdir()), cache)
        assert all(isinstance(v[2][0], dict) and v[2][1] == {} for v in validated)
        assert len(list(cache.iterdir())) == len(rows)
        for r in rows:
            L0.path(r, root).unlink()  # only the kept arrays can feed the builds now
        shutil.rmtree(root / "store")
        store = ColumnStore(L0, index)
        parts = store.stale_parts()
        tasks = store.plan_chunks(parts, cache)
        assert tasks
        for task in tasks:
            store.record_chunk(task, build_chunk(task))
        assert store.stale_parts() == []
    ref, got = _chunks(serial_l0), _chunks(root)
    assert ref.keys() == got.keys()
    for part in ref:
        for k in ref[part]:
            assert np.array_equal(ref[part][k], got[part][k]), (part, k)
    with ArchiveIndex(L0, root) as index:
        store = ColumnStore(L0, index)
        part = L0.partitions(rows[0])[0]
        (root / store.chunk(part)["path"]).unlink()
        task = store.plan_chunks([part], cache)[0]
        task.rows = [{**r, "checksum": "0"} for r in task.rows]  # another revision's arrays
        with pytest.raises(FileNotFoundError):
            build_chunk(task)  # falls back to the (removed) file
        with pytest.warns(RuntimeWarning, match="not written.*gone"):
            store.record_chunk(task, FileNotFoundError("gone"))


def test_later_units_do_not_fetch_the_earlier_units_files(serial_l0, tmp_path):
    """A ``dir:`` source looks back a day for files that began before a range: only the
    first unit does, the later ones fetch the files named in their own range (the unit before
    fetched the rest), yet the archive and report equal one serial unit's over the range."""
    from mica.engine.executors import InlineExecutor

    reports = {}
    for mode, executor, days in (("serial", None, 30.0), ("units", InlineExecutor(), 1 / 24)):
        reports[mode] = update_archive(
            L0,
            f"dir:{serial_l0}",
            START,
            STOP,
            data_root=tmp_path / mode,
            executor=executor,
            days_at_once=days,
        )
    a, b = reports["serial"], reports["units"]
    assert a.ok and b.ok and len(a.done) == 1 and len(b.done) == 4
    assert sorted(a.ingested) == sorted(b.ingested) and a.ingested
    assert b.ingest.unchanged == [] == a.ingest.unchanged  # nothing delivered twice
    _same_archive(tmp_path / "units", tmp_path / "serial")


def test_own_cluster_workers_keep_glibcs_dynamic_mmap_threshold(client):
    """dask's nanny fixes glibc's mmap threshold (MALLOC_TRIM_THRESHOLD_), which made the
    validation and chunk builds 25 % slower; a cluster the executor starts goes without it,
    a caller's cluster keeps its own settings (here: dask's)."""

    def trim() -> str | None:
        return os.environ.get("MALLOC_TRIM_THRESHOLD_")

    assert set(client.run(trim).values()) == {"65536"}  # dask's default, a caller's cluster
    with DaskExecutor(workers=1) as executor:
        assert list(executor.client.run(trim).values()) == [None]


def test_own_cluster_workers_run_without_dasks_profiler_and_frequent_monitors(client):
    """A cluster the executor starts runs its workers without dask's statistical profiler and
    with slower memory and system monitors (5-10 % of V&V's worker CPU); a caller's cluster
    keeps its own settings (here: dask's)."""

    def polls(dask_worker) -> tuple:
        pcs = dask_worker.periodic_callbacks
        return (
            "profile" in pcs,
            pcs["memory_monitor"].callback_time,  # ms
            pcs["monitor"].callback_time,
        )

    assert set(client.run(polls).values()) == {(True, 100, 500)}
    with DaskExecutor(workers=1) as executor:
        assert list(executor.client.run(polls).values()) == [(False, 1000, 2000)]


def test_cluster_path_builds_chunks_at_each_new_store_period(tmp_path):
    """On an executor the store chunks are built when the committed files reach a new
    period of the store (10 days of file starts), as a serial ingest writes them, and the
    arrays kept for them are dropped: staging holds about a period of arrays, not the run's.
    The archive and store equal a serial run's over the boundary."""
    from mica.engine.executors import InlineExecutor
    from mica.time import to_secs

    # four hour-long units across 442368000 = 512 x 10 d: two before it, the one reaching it,
    # one after
    start, stop = "2012:007:21:00:00", "2012:008:01:00:00"
    assert int(to_secs(start) // 864000) == 511 and int(to_secs(stop) // 864000) == 512
    serial = tmp_path / "serial"
    assert update_archive(L0, "sim", start, stop, data_root=serial).ok
    units = tmp_path / "units"
    seen: list[tuple[int, list[str], int]] = []

    def progress(i: int, n: int, label: str) -> None:
        with ArchiveIndex(L0, units, readonly=True) as index:
            try:
                parts = [r[0] for r in index.conn.execute("SELECT part FROM store_chunks")]
            except sqlite3.OperationalError:  # no chunk written yet
                parts = []
        kept = units / STAGING_DIR / "arrays"
        seen.append((i, parts, len(list(kept.glob("*.arrays"))) if kept.exists() else 0))

    report = update_archive(
        L0,
        "sim",
        start,
        stop,
        data_root=units,
        executor=InlineExecutor(),
        days_at_once=1 / 24,
        progress=progress,
    )
    assert report.ok and len(report.done) + len(report.unchanged) == 4
    # unit 2 (23:00-00:00) reaches period 512: before its commit (progress comes first) no
    # chunk is built and the first units' arrays are kept; after it, period 511's chunks
    # (and the longer views' partial ones) are built and no kept array is left
    (at2,) = [(parts, kept) for i, parts, kept in seen if i == 2]
    (at3,) = [(parts, kept) for i, parts, kept in seen if i == 3]
    assert at2[0] == [] and at2[1] > 0
    assert any(p.endswith("/511") for p in at3[0]) and at3[1] == 0
    _same_archive(units, serial)
