"""An archive built by the original mica is read in place, and adopted by `mica adopt`.

The fixture builds one the way the original's updaters left it: its ``archfiles.db3`` schemas
(``archfiles_aca_l0_def.sql``, ``archfiles_asp_l1_def.sql`` with the ``isdefault`` column its
later script added, ``obspar_def.sql``; and as its first schema had them, without
``isdefault``: `drop_isdefault`), rows filled as its ingest filled them, the L0 files
in ``aca0/<year>/<doy>/``, the per-obsid files in ``<CC>/<OOOOO>_v<RR>/`` with the default
link ``<OOOOO>`` and the ``<OOOOO>_last`` link of a newer revision, the pipeline logs copied
beside them and ``last_id.txt``; no ``archive.json`` and no columnar store.

The L0 files are the 36 real flight files of ``tests/data/aca_l0_2003`` (obsid 3552,
2003:215). ``tests/data`` holds no aspect L1 solution or obspar file, so those of the same
observation are the simulator's (`mica.sim`, which models obsid 3552 on its flight schedule)
with the simulation marker taken out: they stand in for the flight files of an original
archive, whose layout and schema are what is tested here.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from mica.cli import main
from mica.time import year_doy

OBSID = 3552
L0_START, L0_STOP = "2003:215:00:00:00", "2003:216:00:00:00"

# --- the original's schemas (column names and types of its .sql definitions) ---------------
L0_SQL = """CREATE TABLE archfiles (
  filename text not null, filetime int not null, year int not null, doy int not null,
  tstart float not null, tstop float not null, startmjf int, startmnf int, stopmjf int,
  stopmnf int, checksum text, tlmver text, ascdsver text, revision int, date text not null,
  rows int not null, imgsize int not null, slot int not null,
  CONSTRAINT pk_archfiles PRIMARY KEY (filename));
CREATE INDEX idx_archfiles_filetime ON archfiles (filetime);"""
ASP_L1_SQL = """CREATE TABLE archfiles (
  filename text not null, filetime int not null, year int not null, doy int not null,
  tstart float not null, tstop float not null, checksum text, ascdsver text, caldbver text,
  content text, revision int, obsid int not null, date text not null,
  CONSTRAINT pk_archfiles PRIMARY KEY (filename));
CREATE INDEX idx_archfiles_filetime ON archfiles (filetime);
ALTER TABLE archfiles ADD COLUMN isdefault int;"""
_OBSPAR_COLUMNS = """title text, observer text, ao text, object text, ss_object text,
  obs_id text, obi_num int, seq_num text, instrume text, grating text, detector text,
  detnam text, si_mode text, optical_monitor text, raster_scan text, dither text,
  dither_y_amp float, dither_y_freq float, dither_y_phase float, dither_z_amp float,
  dither_z_freq float, dither_z_phase float, ra_pnt float, dec_pnt float, roll_pnt float,
  ra_targ float, dec_targ float, y_det_offset float, z_det_offset float,
  radial_offset float, defocus float, sim_z_offset float, pre_id text, uninterrupted text,
  seg_max_num int, ra_nom float, dec_nom float, roll_nom float, date_obs text,
  date_end text, tstart float, tstop float, sched_start float, sched_stop float,
  sched_exp_time float, obs_mode text, maneuver text, maneuver_v1 float,
  maneuver_v2 float, maneuver_v3 float, maneuver_angle float, maneuver_ref text,
  mjdref float, timezero float, timeunit text, timesys text, timversn text, datamode text,
  readmode text, ccdi0_on text, ccdi1_on text, ccdi2_on text, ccdi3_on text,
  ccds0_on text, ccds1_on text, ccds2_on text, ccds3_on text, ccds4_on text,
  ccds5_on text, dropped_chip_count int, onchip_sum text, sumrow int, sumcol int,
  subarray text, startrow int, rowcnt int, subarray_frame_time float, duty_cycle text,
  dtycycle int, exptimea float, exptimeb float, most_efficient text, eventfilter text,
  phamin float, pharange float, bias_request text, mode text, mission text,
  telescop text, sim_x float, sim_y float, sim_z float, foc_len float,
  py_shutter_position int, range_switch_level int, antico_enable text,
  upper_level_disc int, timing_mode text, trigger_level int, u_blank_hi int,
  u_blank_low int, v_blank_low int, v_blank_hi int, uld_enable tetxt, zero_block text,
  blank_enable text, width_enable text, spect_mode text, my_shutter_position int,
  width_threshold int, mt_a float, mt_aop float, mt_e float, mt_epoch float, mt_i float,
  mt_ma float, mt_raan float, timeref text, tassign text, origin text, ascdsver text,
  obi_data text, revision int, obspar_ver int, obspar_type text, obspar_stat text"""
OBSPAR_SQL = f"""CREATE TABLE archfiles (
  filename text not null, obsid int, {_OBSPAR_COLUMNS},
  content text default 'OBSPAR', isdefault int,
  CONSTRAINT pk_archfiles PRIMARY KEY (filename));
CREATE INDEX idx_archfiles_obsid ON archfiles (obsid);
CREATE INDEX idx_archfiles_tstart ON archfiles (tstart);"""
#: the L0 header keywords its ingest copied into a row (``ARCHFILES_HDR_COLS``)
L0_HDR_COLS = "tstart tstop startmjf startmnf stopmjf stopmnf tlmver ascdsver revision date".split()
ASP_HDR_COLS = "tstart tstop caldbver content ascdsver revision date".split()


def _insert(conn: sqlite3.Connection, row: dict) -> None:
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO archfiles ({cols}) VALUES ({marks})", list(row.values()))


def _time_columns(filename: str) -> dict:
    """filetime (the first digit run of the name, as the original took it), year, doy."""
    filetime = int(re.search(r"(\d+)", filename).group(1))
    year, doy = year_doy(filetime)
    return {"filetime": filetime, "year": year, "doy": doy}


def _build_l0(root: Path, l0_dir: Path) -> None:
    root.mkdir(parents=True)
    conn = sqlite3.connect(root / "archfiles.db3")
    conn.executescript(L0_SQL)
    for path in sorted(l0_dir.glob("acaf*_img0.fits.gz")):
        with fits.open(path) as hdus:
            hdu = hdus[1]
            row = {k: hdu.header.get(k.upper()) for k in L0_HDR_COLS}
            row.update(
                filename=path.name,
                checksum=hdu.header["CHECKSUM"],
                imgsize=int(hdu.data[0]["IMGRAW"].shape[0]),
                slot=int(re.search(r"_(\d)_img0", path.name).group(1)),
                rows=len(hdu.data),
                **_time_columns(path.name),
            )
        folder = root / f"{row['year']}" / f"{row['doy']:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, folder / path.name)
        _insert(conn, row)
    conn.commit()
    conn.close()


def _unmark_fits(src: Path, dest: Path) -> None:
    """The simulator's file without its marker card (checksums written again)."""
    with fits.open(src) as hdus:
        for hdu in hdus:
            hdu.header.remove("SIMULATD", ignore_missing=True)
        plain = dest.with_suffix("")  # .fits, gzipped below as the archive keeps it
        hdus.writeto(plain, checksum=True)
    with open(plain, "rb") as fh, gzip.open(dest, "wb") as gz:
        shutil.copyfileobj(fh, gz)
    plain.unlink()


def _unmark_obspar(src: Path, dest: Path) -> None:
    lines = gzip.decompress(src.read_bytes()).decode().splitlines(keepends=True)
    kept = "".join(line for line in lines if not line.startswith("simulated,"))
    dest.write_bytes(gzip.compress(kept.encode()))


def _link(chunk: Path, name: str, target: str) -> None:
    os.symlink(target, chunk / name)  # relative, as the original's update_link made them


def _build_asp_l1(root: Path, scratch: Path) -> None:
    from mica.sim.asp_l1 import write_asp_l1

    root.mkdir(parents=True)
    conn = sqlite3.connect(root / "archfiles.db3")
    conn.executescript(ASP_L1_SQL)
    chunk = root / f"{OBSID:05d}"[:2]
    for rev in (1, 2):
        folder = chunk / f"{OBSID:05d}_v{rev:02d}"
        folder.mkdir(parents=True)
        staged = scratch / f"asp{rev}"
        staged.mkdir(parents=True)
        for path in write_asp_l1(OBSID, rev, staged, decimate=50):
            if "_adat" in path.name:  # the original deleted the L1 ACA images (kalm, gdat, adat)
                continue
            if path.name.endswith(".log.gz"):  # pipeline logs: copied, not indexed
                shutil.copy2(path, folder / path.name)
                continue
            _unmark_fits(path, folder / path.name)
            with fits.open(folder / path.name) as hdus:
                row = {k: hdus[1].header.get(k.upper()) for k in ASP_HDR_COLS}
                row["checksum"] = hdus[1].header["CHECKSUM"]
            isdefault = 1 if rev == 1 else None  # the original's update_link set it
            row.update(filename=path.name, obsid=OBSID, isdefault=isdefault)
            row.update(_time_columns(path.name))
            _insert(conn, row)
    _link(chunk, f"{OBSID:05d}", f"{OBSID:05d}_v01")
    _link(chunk, f"{OBSID:05d}_last", f"{OBSID:05d}_v02")
    (root / "last_id.txt").write_text("123456")
    conn.commit()
    conn.close()


def _build_obspar(root: Path, scratch: Path) -> None:
    from mica.products.obspar import get_obspar
    from mica.sim.obspar import write_obspars

    root.mkdir(parents=True)
    conn = sqlite3.connect(root / "archfiles.db3")
    conn.executescript(OBSPAR_SQL)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(archfiles)")}
    chunk = root / f"{OBSID:05d}"[:2]
    folder = chunk / f"{OBSID:05d}_v01"
    folder.mkdir(parents=True)
    staged = scratch / "obspar"
    staged.mkdir(parents=True)
    for path in write_obspars(OBSID, 1, staged):
        _unmark_obspar(path, folder / path.name)
        pars = get_obspar(folder / path.name)
        row = {k: v for k, v in pars.items() if k in columns}
        row.update(filename=path.name, obsid=int(pars["obs_id"]), isdefault=1)
        _insert(conn, row)
    _link(chunk, f"{OBSID:05d}", f"{OBSID:05d}_v01")
    (root / "last_id.txt").write_text("654321")
    conn.commit()
    conn.close()


def build_original_archive(root: Path, l0_dir: Path, scratch: Path) -> Path:
    """An archive root as the original's updaters left it (see the module docstring)."""
    _build_l0(root / "aca0", l0_dir)
    _build_asp_l1(root / "asp1", scratch)
    _build_obspar(root / "obspar", scratch)
    return root


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: link target, or (size, mtime, content digest)."""
    import hashlib

    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir", path.stat().st_mode)
        else:
            st = path.stat()
            out[rel] = (st.st_size, st.st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest())
    return out


@pytest.fixture(scope="module")
def original_template(tmp_path_factory, real_l0_dir) -> Path:
    """The original-layout archive, built once (tests copy it before writing into it)."""
    base = tmp_path_factory.mktemp("original")
    return build_original_archive(base / "archive", real_l0_dir, base / "scratch")


@pytest.fixture
def original_archive(original_template, tmp_path, monkeypatch) -> Path:
    """A private copy of the original-layout archive, ``MICA_ARCHIVE`` pointing at it."""
    root = tmp_path / "archive"
    shutil.copytree(original_template, root, symlinks=True)
    monkeypatch.setenv("MICA_ARCHIVE", str(root))
    return root


def drop_isdefault(root: Path) -> None:
    """Make the per-obsid indexes the original's first schema: no ``isdefault`` column (its
    ``archfiles_asp_l1_def.sql`` had none; a later script added it, and its readers took
    the default revision from the ``<OOOOO>`` link)."""
    for folder in ("asp1", "obspar"):
        conn = sqlite3.connect(root / folder / "archfiles.db3")
        conn.execute("ALTER TABLE archfiles DROP COLUMN isdefault")
        conn.commit()
        conn.close()


@pytest.fixture(params=["with isdefault", "before isdefault"])
def any_original_archive(request, original_archive) -> Path:
    """The original-layout archive as its later and its first schema had it."""
    if request.param == "before isdefault":
        drop_isdefault(original_archive)
    return original_archive


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def read_everything(root: Path) -> dict:
    """What the readers give on the archive ``root`` (``MICA_ARCHIVE``), as plain values."""
    from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar

    window = ("2003:215:03:00:00", "2003:215:03:30:00")
    data = aca_l0.get_slot_data(L0_START, L0_STOP, slot=3)
    from_files = aca_l0.get_slot_data(L0_START, L0_STOP, slot=3, use_store=False)
    assert np.array_equal(data.filled(0), from_files.filled(0))
    quats, times, _ = asp_l1.get_atts(OBSID)
    return {
        "l0 files": [
            Path(f).relative_to(root) for f in aca_l0.get_files(start=L0_START, stop=L0_STOP)
        ],
        "l0 obsid files": len(aca_l0.get_files(obsid=OBSID)),
        "slot 3 rows": len(data),
        "slot 3 TEMPCCD": float(data["TEMPCCD"].mean()),
        "images": len(aca_l0.get_l0_images(*window, slot=3)),
        "aca images": len(aca_l0.get_aca_images(*window)),
        "dac": len(aca_hdr3.MSID("dac", L0_START, L0_STOP).vals),
        "asp dir": asp_l1.get_dir(OBSID),
        "asp dirs": asp_l1.get_obs_dirs(OBSID),
        "asp files": asp_l1.get_files(OBSID),
        "asp last": asp_l1.get_files(OBSID, revision="last"),
        "asp range": asp_l1.get_files(start=L0_START, stop=L0_STOP, content=["ASPSOL"]),
        "atts": (quats.shape, float(times[0])),
        "obspar": obspar.get_obspar(OBSID)["detector"],
        "obspar file": obspar.get_obspar_file(OBSID),
        "obspar dirs": obspar.get_obs_dirs(OBSID),
        "obsids": obspar.get_obsids(L0_START, L0_STOP),
    }


def test_readers_read_it_in_place(any_original_archive, real_l0_dir):
    """Every reader works without archive.json and without a store, and writes nothing."""
    original_archive = any_original_archive
    before = tree_state(original_archive)
    got = read_everything(original_archive)
    assert tree_state(original_archive) == before
    assert not list(original_archive.rglob("archive.json"))
    assert sorted(p.name for p in got["l0 files"]) == sorted(
        p.name for p in real_l0_dir.glob("*.fits.gz")
    )
    assert all(str(p).startswith("aca0/2003/215/") for p in got["l0 files"])
    assert got["l0 obsid files"] > 0 and got["slot 3 rows"] > 1000 and got["dac"] > 0
    assert got["images"] > 0 and got["aca images"] > 0
    asp1 = original_archive / "asp1" / "03"
    assert got["asp dir"] == str(asp1 / "03552_v01")
    assert got["asp dirs"]["revisions"] == [1, 2]
    assert got["asp dirs"]["last"] == str(asp1 / "03552_v02")
    assert {Path(f).parent.name for f in got["asp files"]} == {"03552_v01"}
    assert {Path(f).parent.name for f in got["asp last"]} == {"03552_v02"}
    assert len(got["asp files"]) == 16 and got["atts"][0][0] > 0
    assert got["obspar file"].endswith("03/03552_v01/axaff03552_000N001_obs0a.par.gz")
    assert got["obspar"] and got["obsids"] == [OBSID]


def test_first_schema_read_by_another_user(original_template, monkeypatch):
    """An index without ``isdefault``, in an archive this reader cannot write (uid 65534,
    as `tests.hardening.test_read_only` reads): the same values as its owner reads."""
    import tempfile

    from tests.hardening.test_read_only import IS_ROOT, _as_nobody

    if not IS_ROOT:
        pytest.skip("reading an archive of another user needs root")
    base = Path(tempfile.mkdtemp(prefix="mica-original-", dir="/tmp"))
    try:
        base.chmod(0o755)  # mkdtemp makes it 0700: others could not even enter
        archive = base / "archive"
        shutil.copytree(original_template, archive, symlinks=True)
        drop_isdefault(archive)
        monkeypatch.setenv("MICA_ARCHIVE", str(archive))
        before = tree_state(archive)
        owner = read_everything(archive)
        assert tree_state(archive) == before
        assert owner["asp dir"].endswith("03552_v01") and owner["asp dirs"]["revisions"] == [1, 2]
        got, logged = _as_nobody(lambda: read_everything(archive))
        assert got == owner and not logged
        assert tree_state(archive) == before
    finally:
        shutil.rmtree(base)


def test_check_reports_the_original_layout(any_original_archive):
    from mica.engine.provenance import archive_kind

    original_archive = any_original_archive

    before = tree_state(original_archive)
    code, out = _run("check")
    assert code == 0, out
    for product in ("aca-l0", "asp-l1", "obspar"):
        assert f"{product} provenance: real, an archive of the original mica's layout" in out
    assert "no columnar store: the original kept none" in out
    assert "0 problems" in out and "problem:" not in out
    assert archive_kind(original_archive / "aca0") == "real"
    assert tree_state(original_archive) == before


def test_check_finds_a_missing_file_of_every_original_index(original_archive):
    """The original's indexes, some read through a view adding the columns they lack (no
    rowids there), are checked row by row all the same: a removed file is reported."""
    from mica.engine.index_check import check_archive
    from mica.engine.registry import products

    for entry in products():
        product = entry.load() if entry.layout != "calib" else None
        root = original_archive / getattr(product, "subdir", "-")
        if product is None or entry.layout == "derived" or not root.is_dir():
            continue
        files = sorted(f for f in root.rglob("*.gz") if product.filename_re.fullmatch(f.name))
        files[0].unlink()
        problems = check_archive(product, root).problems
        assert f"index row without file: {files[0].name}" in problems, (entry.name, problems)


def test_writers_refuse_it_until_adopted(original_archive):
    from mica.engine.index import ArchiveIndex
    from mica.errors import ProvenanceError
    from mica.products.aca_l0 import L0

    before = tree_state(original_archive)
    with pytest.raises(ProvenanceError, match="mica adopt"):
        ArchiveIndex(L0, original_archive / "aca0")
    code, out = _run("rebuild", "store")
    assert code != 0 and "mica adopt" in out
    after = tree_state(original_archive)
    assert {k: v for k, v in after.items() if not k.endswith("update.lock")} == before


def test_adopt(any_original_archive):
    """`mica adopt`: provenance recorded, index made ours, store built; data unchanged."""
    from mica.engine.provenance import read_provenance

    original_archive = any_original_archive
    with sqlite3.connect(original_archive / "asp1" / "archfiles.db3") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(archfiles)")}
    early = set() if "isdefault" in columns else {"isdefault"}  # added by the adoption

    read_before = read_everything(original_archive)
    data_before = {
        k: v for k, v in tree_state(original_archive).items() if "archfiles.db3" not in k
    }
    code, out = _run("adopt")
    assert code == 0, out
    for folder in ("aca0", "asp1", "obspar"):
        record = read_provenance(original_archive / folder)
        assert record["kind"] == "real" and record["source"] == "arc5gl"
        assert record["adopted"]["from"] == "the original mica's layout"
    added = [
        set(line.split(":", 1)[1].strip().split(", "))
        for line in out.splitlines()
        if "index columns added:" in line
    ]
    assert added == [{"obi"} | early, {"filetime", "year", "doy", "checksum"} | early], out
    assert list((original_archive / "aca0" / "store").glob("**/*.h5"))
    after = tree_state(original_archive)
    # the original's files, folders, links and last_id.txt are as they were
    assert {k: v for k, v in after.items() if k in data_before} == data_before
    assert read_everything(original_archive) == read_before

    asp = sqlite3.connect(original_archive / "asp1" / "archfiles.db3")
    obis = asp.execute("SELECT DISTINCT obi FROM archfiles").fetchall()
    defaults = asp.execute("SELECT DISTINCT revision FROM archfiles WHERE isdefault = 1")
    assert obis == [(0,)] and defaults.fetchall() == [(1,)]
    links = asp.execute("SELECT obsid, default_rev, last_rev, linked FROM obsid_links")
    assert links.fetchall() == [(OBSID, 1, 2, 1)]
    par = sqlite3.connect(original_archive / "obspar" / "archfiles.db3")
    row = par.execute("SELECT filetime, year, doy, tstart FROM archfiles").fetchone()
    assert row[:3] == (int(row[3]), 2003, 215)

    code, out = _run("check")
    assert code == 0 and "problem:" not in out and "adopted from the original" in out, out
    code, out = _run("adopt")
    assert code == 0 and out.count("nothing to adopt") == 3, out


def test_first_update_adopts_and_continues(original_archive, real_l0_dir, tmp_path):
    """The first `mica update` adopts; a dir: update on top adds files."""
    from mica.archive import aca_l0, obspar
    from mica.engine.provenance import read_provenance
    from mica.sim.obspar import write_obspars

    # the original archived the real files up to 2003:215:04:40; the dir: source has all
    aca0 = original_archive / "aca0"
    conn = sqlite3.connect(aca0 / "archfiles.db3")
    late = [r[0] for r in conn.execute("SELECT filename FROM archfiles WHERE filetime > 176272800")]
    conn.execute("DELETE FROM archfiles WHERE filetime > 176272800")
    conn.commit()
    conn.close()
    for name in late:
        (aca0 / "2003" / "215" / name).unlink()
    code, out = _run(
        "update",
        "aca-l0",
        "--source",
        f"dir:{real_l0_dir}",
        "--start",
        "2003:214",
        "--stop",
        "2003:216",
        "--quiet",
    )
    assert code == 0, out
    assert "adopted the original mica's archive" in out and "chunks built" in out
    assert f"{len(late)} ingested, {36 - len(late)} already archived" in out
    assert read_provenance(aca0)["source"] == "arc5gl"
    assert len(aca_l0.get_files(start=L0_START, stop=L0_STOP)) == 36

    # an obspar of another obsid of the day, from a folder of flight-layout files
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    for path in write_obspars(3447, 1, tmp_path):
        _unmark_obspar(path, upstream / path.name)
    code, out = _run("update", "obspar", "--obsid", "3447", "--source", f"dir:{upstream}")
    assert code == 0, out
    assert "adopted the original mica's archive" in out
    assert obspar.get_obspar_file(3447).endswith("03/03447_v01/axaff03447_000N001_obs0a.par.gz")
    assert obspar.get_obspar(OBSID) and obspar.get_dir(OBSID).endswith("03552_v01")


def test_adopt_refuses_simulated_files(original_archive, tmp_path):
    """A file with the simulation marker: not adopted, index and files unchanged."""
    from mica.sim.obspar import write_obspars

    folder = original_archive / "obspar" / "03" / "03552_v01"
    (path,) = write_obspars(OBSID, 1, tmp_path)
    shutil.copy(path, folder / path.name)  # the simulator's, marker and all
    before = tree_state(original_archive)
    code, out = _run("adopt", "obspar")
    assert code != 0 and "carries the simulation marker" in out, out
    after = tree_state(original_archive)
    assert {k: v for k, v in after.items() if not k.endswith("update.lock")} == before


def test_check_repair_adopts(original_archive):
    from mica.engine.provenance import read_provenance

    code, out = _run("check", "--repair")
    assert code == 0, out
    assert "repaired: provenance recorded in archive.json" in out
    assert read_provenance(original_archive / "asp1")["kind"] == "real"
