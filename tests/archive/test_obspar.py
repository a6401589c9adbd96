"""Obspar archive: parser, simulated upstream, per-obsid layout, queries, CLI, bad-obsid list."""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mica.archive import aca_l0, obspar
from mica.archive.obsid_times import obsid_interval
from mica.cli import main
from mica.engine.index_check import check_archive
from mica.engine.obsid_layout import ObsidError, default_link, last_link
from mica.engine.obsid_read import query_rows
from mica.engine.obsid_update import BAD_LIST, update_obsid_archive
from mica.errors import MissingArchiveError
from mica.products.obspar import (
    OBSPAR,
    OBSPAR_FLOAT_KEYS,
    OBSPAR_INT_KEYS,
    OBSPAR_KEYS,
    OBSPAR_TEXT_KEYS,
    parse_obspar_text,
)
from mica.sim import obspar as sim_obspar
from mica.sim.mission import default_mission


def _multi_obi_obsid() -> int:
    """A science obsid the simulated upstream observed in two OBIs."""
    for obs in default_mission().observations("2012:001", "2014:001"):
        if len(sim_obspar.obis(obs)) == 2 and sim_obspar.obspar_revisions(obs.obsid):
            return obs.obsid
    raise AssertionError("no multi-OBI obsid in 2012-2013")


MULTI = _multi_obi_obsid()
EXAMPLES = [7000, 7001, 5438, MULTI]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Obspars of the example obsids and of 2012:001-030, through the sim source."""
    root = tmp_path_factory.mktemp("obspar")
    report = update_obsid_archive(OBSPAR, "sim", EXAMPLES, data_root=root)
    assert report.ok, report.summary()
    report = update_obsid_archive(OBSPAR, "sim", start="2012:001", stop="2012:030", data_root=root)
    assert report.ok and len(report.done) > 50, report.summary()
    return root


# --- parser ----------------------------------------------------------------------------------
PAR = """# obspar written by hand: comment lines and every parameter type
obs_id,s,h,"7000",,,"Observation ID"

obi_num,i,h,0,,,"OBI"
ra_pnt,r,h,123.456,,,"RA"
date-obs,s,h,"2008-10-27T07:21:48",,,"Start"
dither,b,h,yes,,,"Dither on (boolean)"
raster_scan,b,h,no,,,"Raster (boolean)"
evtfile,f,h,"acisf07000_evt1.fits",,,"Event file (file type)"
outfile,fw,h,"out.fits",,,"Output (writable file)"
sumrow,i,h,,,,"Empty int"
phamin,r,h,INDEF,,,"Undefined real"
title,s,h,"A title, with a comma",,,"Title"
"""


def test_parser_types_comments_and_names():
    pars = parse_obspar_text(PAR)
    assert pars["obs_id"] == "7000" and pars["obi_num"] == 0
    assert pars["ra_pnt"] == pytest.approx(123.456) and isinstance(pars["ra_pnt"], float)
    assert pars["date_obs"] == "2008-10-27T07:21:48"  # '-' -> '_'
    assert pars["dither"] is True and pars["raster_scan"] is False  # b: the original failed
    assert pars["evtfile"] == "acisf07000_evt1.fits" and pars["outfile"] == "out.fits"
    assert pars["sumrow"] is None and pars["phamin"] is None
    assert pars["title"] == "A title, with a comma"
    assert len(pars) == 11  # comment and blank lines skipped


def test_parser_refuses_bad_values():
    with pytest.raises(ValueError, match="obi_num"):
        parse_obspar_text('obi_num,i,h,zero,,,"OBI"\n')
    with pytest.raises(ValueError, match="boolean"):
        parse_obspar_text('dither,b,h,maybe,,,"x"\n')
    with pytest.raises(ValueError, match="fewer than 4"):
        parse_obspar_text("obs_id,s\n")


# --- simulated upstream -----------------------------------------------------------------------
def test_sim_obspar_has_the_real_keys_and_plausible_values(tmp_path):
    files = sim_obspar.write_obspars(7000, 2, tmp_path)
    assert [f.name for f in files] == ["axaff07000_000N002_obs0a.par.gz"]
    text = gzip.decompress(files[0].read_bytes()).decode()
    pars = parse_obspar_text(text)
    assert set(OBSPAR_KEYS) <= set(pars)
    assert all(isinstance(pars[k], str) for k in OBSPAR_TEXT_KEYS)
    assert all(isinstance(pars[k], int) for k in OBSPAR_INT_KEYS)
    assert all(isinstance(pars[k], float) for k in OBSPAR_FLOAT_KEYS)
    obs = default_mission().observation(7000)
    assert pars["tstart"] == pytest.approx(obs.tstart, abs=1e-5)
    assert pars["tstop"] == pytest.approx(obs.tstop, abs=1e-5)
    assert pars["ra_pnt"] == pytest.approx(obs.ra, abs=1e-5)
    assert pars["detector"] in sim_obspar.NOMINAL_SIM_Z
    assert pars["sim_z"] == sim_obspar.NOMINAL_SIM_Z[pars["detector"]]
    assert pars["instrume"] == pars["detector"][:-2] and pars["mission"] == "AXAF"
    assert pars["dither_y_amp"] == pytest.approx(obs.dither_ampl[0] / 3600, rel=1e-4)
    assert pars["revision"] == 2 and pars["obs_id"] == "7000"
    # DATE-OBS is TT: 1998-01-01T00:00:00 TT + tstart seconds
    assert (
        pars["date_obs"][:16]
        == str(np.datetime64("1998-01-01T00:00:00") + np.timedelta64(int(obs.tstart), "s"))[:16]
    )
    # same observation, same bytes (gzip mtime 0)
    (tmp_path / "again").mkdir()
    again = sim_obspar.write_obspars(7000, 2, tmp_path / "again")
    assert again[0].read_bytes() == files[0].read_bytes()


# --- archive and examples ------------------------------------------------------------------
def test_examples(archive):
    path = obspar.get_obspar_file(7000, data_root=archive)
    assert path == str(archive / "07" / "07000_v02" / "axaff07000_000N002_obs0a.par.gz")
    pars = obspar.get_obspar(7001, data_root=archive)
    assert pars["detector"] == "ACIS-I"
    assert pars["num_ccd_on"] == sum(pars[k] == "Y" for k in pars if k.startswith("ccd"))
    assert pars["num_ccd_on"] >= 4 and isinstance(pars["tstart"], float)
    files = obspar.get_files(start="2012:001", stop="2012:030", data_root=archive)
    assert len(files) > 50 and all(f.endswith("_obs0a.par.gz") for f in files)
    starts = [obspar.get_obspar_file(int(Path(f).name[5:10]), data_root=archive) for f in files]
    assert all(s is not None for s in starts)


def test_layout_links_and_dirs(archive):
    link = default_link(archive, 7000)
    assert link.is_symlink() and os.readlink(link) == "07000_v02"  # relative link
    assert not last_link(archive, 7000).exists()  # last == default
    dirs = obspar.get_obs_dirs(7000, data_root=archive)
    assert dirs == {
        2: str(archive / "07" / "07000_v02"),
        "revisions": [2],
        "default": str(archive / "07" / "07000_v02"),
        "last": str(archive / "07" / "07000_v02"),
    }
    assert obspar.get_dir(7000, data_root=archive) == dirs["default"]


def test_unknown_obsids_give_none_or_a_clear_error(archive):
    assert obspar.get_dir(3, data_root=archive) is None  # the original raised TypeError
    assert obspar.get_obs_dirs(3, data_root=archive) is None
    assert obspar.get_obspar_file(3, data_root=archive) is None
    assert obspar.get_obspar(3, data_root=archive) is None
    assert obspar.get_obspar_file(7000, version=1, data_root=archive) is None  # not archived
    for bad in (0, 70000, "6000 OR 1=1", 12.5):
        with pytest.raises(ObsidError):
            obspar.get_dir(bad, data_root=archive)
    with pytest.raises(ValueError, match="version"):
        obspar.get_obspar_file(7000, version="newest", data_root=archive)
    with pytest.raises(TypeError, match="obsid or start and stop"):
        obspar.get_files(start="2012:001", data_root=archive)
    with pytest.raises(MissingArchiveError, match="no obspar archive in .*never-written"):
        obspar.get_files(7000, data_root=archive.parent / "never-written")


def test_queries_revisions_and_time_rules(archive):
    assert obspar.get_files(7000, revision=2, data_root=archive) == [
        obspar.get_obspar_file(7000, data_root=archive)
    ]
    assert obspar.get_files(7000, revision=1, data_root=archive) == []
    assert obspar.get_files(7000, revision="last", data_root=archive) == obspar.get_files(
        7000, revision="all", data_root=archive
    )
    with pytest.raises(ValueError, match="revision"):
        obspar.get_files(7000, revision="newest", data_root=archive)
    # time rule: files overlapping [start, stop]
    obs = default_mission().observation(7001)
    hit = obspar.get_files(start=obs.tstop - 10, stop=obs.tstop + 5, data_root=archive)
    assert any("axaff07001" in f for f in hit)
    assert not any(
        "axaff07001" in f
        for f in obspar.get_files(start=obs.tstop + 1, stop=obs.tstop + 2, data_root=archive)
    )


def test_multi_obi_obsid(archive):
    files = obspar.get_files(MULTI, data_root=archive)
    assert [Path(f).name[11:14] for f in files] == ["001", "002"]  # one file per OBI
    assert obspar.get_obspar(MULTI, data_root=archive)["obi_num"] == 1  # lowest OBI
    assert obspar.get_obspar(MULTI, obi=2, data_root=archive)["obi_num"] == 2
    obs = default_mission().observation(MULTI)
    ids = obspar.get_obsids(obs.tstart, obs.tstop, data_root=archive)
    assert ids.count(MULTI) == 1  # the original listed it once per OBI
    assert obsid_interval(MULTI, data_root=archive) == pytest.approx((obs.tstart, obs.tstop))


def test_get_obsids_by_time(archive):
    ids = obspar.get_obsids("2012:001", "2012:005", data_root=archive)
    expected = [o.obsid for o in default_mission().observations("2012:001", "2012:005")]
    assert sorted(ids) == sorted(expected)
    assert len(ids) == len(set(ids))
    assert obspar.get_obsids("1999:300", "1999:301", data_root=archive) == []


def test_index_schema_fixes(archive):
    conn = sqlite3.connect(archive / "archfiles.db3")
    cols = {r[1]: r[2].lower() for r in conn.execute("PRAGMA table_info(archfiles)")}
    assert cols["uld_enable"] == "text"  # 'tetxt' in the original
    for col in ("filetime", "year", "doy", "checksum"):  # absent in the original
        assert col in cols
    assert set(OBSPAR_KEYS) <= set(cols)
    row = conn.execute(
        "SELECT obsid, tstart, filetime, isdefault FROM archfiles "
        "WHERE filename = 'axaff07000_000N002_obs0a.par.gz'"
    ).fetchone()
    assert row[0] == 7000 and row[2] == int(row[1]) and row[3] == 1
    conn.close()


def test_sql_is_parameterised(archive):
    with pytest.raises(ObsidError):
        obspar.get_files("7000) OR (1=1", data_root=archive)
    with pytest.raises(ValueError, match="unknown obspar content"):
        query_rows(OBSPAR, 7000, content=["OBSPAR') OR ('1'='1"], data_root=archive)
    assert len(obspar.get_files(7000, data_root=archive)) == 1


def test_rerun_is_idempotent_and_check_is_clean(archive):
    def listing() -> list:
        return sorted(
            (str(p.relative_to(archive)), p.is_symlink() and os.readlink(p))
            for p in archive.rglob("*")
            if "lock" not in p.name and ".db3" not in p.name
        )

    names = listing()
    report = update_obsid_archive(OBSPAR, "sim", EXAMPLES, data_root=archive)
    assert report.ok and not report.ingest.ingested
    assert not report.done and sorted(report.unchanged) == sorted(EXAMPLES)
    assert listing() == names
    check = check_archive(OBSPAR, data_root=archive)
    assert check.ok, check.summary()


def test_aca_l0_get_files_by_obsid_uses_the_obspar_archive(tmp_path, monkeypatch):
    """An obspar whose tstart differs from the schedule: the interval comes from it."""
    src = tmp_path / "mirror"
    src.mkdir()
    obs = default_mission().observation(5438)
    obi = sim_obspar.Obi(0, obs.tstart + 1000.0, obs.tstop)
    text = sim_obspar.obspar_text(obs, obi, 1, obs.tstop + 86400)
    (src / "axaff05438_000N001_obs0a.par.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
    archive = tmp_path / "archive"
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    with pytest.raises(ValueError, match="mica update obspar --obsid 5438"):
        obsid_interval(5438)  # no archive says where its data come from: no schedule guess
    report = update_obsid_archive(OBSPAR, f"dir:{src}", [5438])
    assert report.ok, report.summary()
    assert obsid_interval(5438) == pytest.approx((obs.tstart + 1000.0, obs.tstop))
    with pytest.raises(MissingArchiveError, match="no aca-l0 archive in"):
        aca_l0.get_files(obsid=5438)  # no L0 archive: an error, not an empty result
    with pytest.raises(ValueError, match="obsid 30000 is not in the obspar archive"):
        obsid_interval(30000)  # not archived


def test_cli_update_obspar(tmp_path):
    runner = CliRunner()
    root = tmp_path / "obspar"
    result = runner.invoke(
        main,
        [
            "update",
            "obspar",
            "--obsid",
            "7000,7001",
            "--source",
            "sim",
            "--data-root",
            str(root),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 obsids updated" in result.output
    assert (root / "07" / "07001").is_symlink()
    result = runner.invoke(
        main,
        ["update", "obspar", "--obsid", "7000", "--start", "2012:001", "--data-root", str(root)],
    )
    assert result.exit_code != 0 and "either --obsid or --start" in result.output
    result = runner.invoke(main, ["update", "obspar", "--obsid", "70000", "--data-root", str(root)])
    assert result.exit_code != 0 and "outside 1..65535" in result.output
    empty = ["update", "obspar", "--data-root", str(tmp_path / "empty"), "--quiet"]
    result = runner.invoke(main, empty)
    assert result.exit_code != 0 and "--source sim | dir:PATH | arc5gl | cda" in result.output
    result = runner.invoke(main, [*empty, "--source", "sim"])
    assert result.exit_code != 0 and "empty" in result.output


# --- provisional revisions and the bad-obsid list -------------------------------------------
def _mirror(root: Path, obsid: int, revs: list[int], default: int, last: int) -> None:
    """A mica-layout mirror (dir: source) holding obspar revisions with default/last links."""
    obs = default_mission().observation(obsid)
    chunk = root / f"{obsid:05d}"[:2]
    for rev in revs:
        folder = chunk / f"{obsid:05d}_v{rev:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = sim_obspar.obspar_text(
            obs, sim_obspar.Obi(0, obs.tstart, obs.tstop), rev, obs.tstop + rev * 86400
        )
        (folder / sim_obspar.obspar_name(obsid, 0, rev)).write_bytes(
            gzip.compress(text.encode(), mtime=0)
        )
    for name, rev in ((f"{obsid:05d}", default), (f"{obsid:05d}_last", last)):
        link = chunk / name
        if link.is_symlink():
            link.unlink()
        if name.endswith("_last") and last == default:
            continue
        link.symlink_to(f"{obsid:05d}_v{rev:02d}")


@pytest.mark.parametrize("bad", [False, True])
def test_provisional_revisit_and_bad_obsid_list(tmp_path, bad):
    mirror, root = tmp_path / "mirror", tmp_path / "obspar"
    a, b = 7000, 7001
    _mirror(mirror, a, [1, 2], default=1, last=2)  # revision 2 provisional upstream
    _mirror(mirror, b, [1], default=1, last=1)
    obs_a = default_mission().observation(a)
    report = update_obsid_archive(
        OBSPAR, f"dir:{mirror}", start=obs_a.tstart - 10, stop=obs_a.tstop, data_root=root
    )
    assert report.ok and a in report.done, report.summary()
    assert obspar.get_obs_dirs(a, data_root=root)["revisions"] == [1, 2]
    assert os.readlink(last_link(root, a)) == "07000_v02"
    assert obspar.get_obspar(a, data_root=root)["revision"] == 1
    assert obspar.get_obspar(a, version="last", data_root=root)["revision"] == 2
    # upstream releases revision 2; a later run (for obsid b's time) re-checks obsid a
    _mirror(mirror, a, [1, 2], default=2, last=2)
    if bad:
        (root / OBSPAR.bad_obsids_file).write_text(f"obsid\n{a}\n")
    obs_b = default_mission().observation(b)
    report = update_obsid_archive(
        OBSPAR, f"dir:{mirror}", start=obs_b.tstart - 10, stop=obs_b.tstop, data_root=root
    )
    assert report.ok, report.summary()
    if bad:
        assert report.skipped == {a: BAD_LIST} and a not in report.done
        assert os.readlink(default_link(root, a)) == "07000_v01"
    else:
        assert a in report.done and not report.skipped
        assert os.readlink(default_link(root, a)) == "07000_v02"
        assert not last_link(root, a).exists()  # removed once last == default
        assert obspar.get_obspar(a, data_root=root)["revision"] == 2
    assert check_archive(OBSPAR, data_root=root).ok


def test_rejected_file_is_quarantined_and_revision_not_complete(tmp_path):
    """A delivered obspar whose content contradicts its name never enters the archive."""
    mirror, root = tmp_path / "mirror", tmp_path / "obspar"
    _mirror(mirror, 7000, [1], default=1, last=1)
    path = next(mirror.rglob("*.par.gz"))
    text = gzip.decompress(path.read_bytes()).decode().replace('"7000"', '"7001"', 1)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    report = update_obsid_archive(OBSPAR, f"dir:{mirror}", [7000], data_root=root)
    assert not report.ok and "7000" in report.summary()
    assert obspar.get_obs_dirs(7000, data_root=root) is None
    assert (root / "rejected" / path.name).exists()
    reason = (root / "rejected" / (path.name + ".reason")).read_text()
    assert "obsid 7001" in reason or "does not match" in reason
