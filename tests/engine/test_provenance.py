"""Provenance: archive.json, the simulation marker, sources checked against the archive."""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from astropy.io import fits
from click.testing import CliRunner

from mica.archive import aca_l0
from mica.archive.obsid_times import obsid_interval
from mica.engine.describe import describe_file
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.ingest import REJECTED_DIR, ingest_files
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.provenance import (
    ARCHIVE_JSON,
    ProvenanceError,
    file_is_simulated,
    read_provenance,
    resolve_source,
)
from mica.engine.time_update import update_archive
from mica.errors import MissingDataError
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR, get_obspar
from mica.sim.aca_l0 import plan_l0_files, write_l0_file
from mica.sim.mission import default_mission
from mica.time import to_secs

SIM_WINDOW = ("2012:001:00:00:00", "2012:001:00:20:00")


@pytest.fixture
def real_archive(tmp_path, real_l0_archive) -> Path:
    """A copy of the archive of the 36 real 2003 files (filled through dir:)."""
    root = tmp_path / "archive" / "aca0"
    shutil.copytree(real_l0_archive, root, ignore=shutil.ignore_patterns("update.lock"))
    return root


def _sim_l0_file(dest: Path) -> Path:
    plan = plan_l0_files(*SIM_WINDOW)[0]
    return write_l0_file(plan, dest)


def test_real_archive_records_its_source(real_archive, real_l0_dir):
    record = read_provenance(real_archive)
    assert record["kind"] == "real" and record["source"] == f"dir:{real_l0_dir}"
    assert "simulator" not in record and record["created"].endswith("Z")


def test_real_archive_refuses_a_simulated_file(real_archive, tmp_path):
    path = _sim_l0_file(tmp_path / "staged")
    report = ingest_files(L0, [path], data_root=real_archive)
    assert not report.ingested and len(report.rejected) == 1
    text = str(report.rejected[0])
    assert path.name in text and "simulated (mica.sim)" in text and "is real" in text
    assert (real_archive / REJECTED_DIR / path.name).exists()  # quarantined, not lost
    assert len(aca_l0.get_files(start="2012:001", stop="2012:002", data_root=real_archive)) == 0


def test_simulated_archive_refuses_real_files(tmp_path, real_l0_dir):
    root = tmp_path / "aca0"
    report = update_archive(L0, "sim", *SIM_WINDOW, data_root=root)
    assert report.ingested and not report.rejected
    record = read_provenance(root)
    assert record["kind"] == "simulated" and record["source"] == "sim"
    assert record["simulator"] == {"seed": 1999, "version": "0.1.0"}
    report = update_archive(L0, f"dir:{real_l0_dir}", "2003:215", "2003:216", data_root=root)
    assert not report.ingested and len(report.rejected) == 36
    assert all("real (flight" in str(e) and "is simulated" in str(e) for e in report.rejected)
    assert read_provenance(root) == record  # the kind never changes


def test_a_source_of_the_other_kind_is_refused(real_archive, tmp_path):
    with pytest.raises(ProvenanceError, match="delivers simulated data .* is real"):
        update_archive(L0, "sim", *SIM_WINDOW, data_root=real_archive)
    sim_root = tmp_path / "asp1"
    resolve_source("sim", ASP_L1, sim_root)
    with pytest.raises(ProvenanceError, match="source cda delivers real data .* is simulated"):
        resolve_source("cda", ASP_L1, sim_root)


def test_no_source_on_a_new_archive_lists_the_choices(tmp_path):
    root = tmp_path / "aca0"
    with pytest.raises(ProvenanceError, match=r"--source sim \| dir:PATH \| arc5gl \| cda"):
        update_archive(L0, None, *SIM_WINDOW, data_root=root)
    assert not (root / ARCHIVE_JSON).exists()


def test_no_source_uses_the_recorded_one(real_archive):
    report = update_archive(L0, None, "2003:215", "2003:216", data_root=real_archive)
    assert len(report.ingest.unchanged) == 36 and not report.rejected and not report.ingested


def test_simulated_files_carry_the_marker(tmp_path, real_l0_dir, monkeypatch):
    from mica.sim import asp_l1, obspar

    monkeypatch.setenv("MICA_SIM_L1_DECIMATE", "40")
    l0 = _sim_l0_file(tmp_path)
    for k in (0, 1):
        header = fits.getheader(l0, k)
        assert header["SIMULATD"] is True and header["ORIGIN"] == "mica.sim"
        assert header["CREATOR"].startswith("mica.sim")
    from mica.sim import aca_dark

    for sub in ("l1", "par"):
        (tmp_path / sub).mkdir()
    written = asp_l1.write_asp_l1(2121, 2, tmp_path / "l1")
    l1 = [p for p in written if ".fits" in p.name]
    logs = [p for p in written if ".log" in p.name]
    assert logs and all(b"SIMULATD = T" in gzip.decompress(p.read_bytes()) for p in logs)
    par = obspar.write_obspars(2121, 1, tmp_path / "par")
    dark = tmp_path / "acadark_r1.fits.gz"
    dark.write_bytes(aca_dark.replica_bytes(aca_dark.dark_cal_schedule()[0], 1))
    assert fits.getheader(dark)["SIMULATD"] is True
    assert l1 and par and all(file_is_simulated(p) for p in [l0, *l1, *par, dark])
    assert get_obspar(par[0])["simulated"] is True  # the parser reads the marker line
    assert not any(file_is_simulated(p) for p in sorted(real_l0_dir.glob("*.fits.gz")))


def test_get_files_by_obsid_on_a_real_archive_without_its_obspar(real_archive, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(real_archive.parent))
    with pytest.raises(MissingDataError, match="mica update obspar --obsid 3552"):
        aca_l0.get_files(obsid=3552)
    with pytest.raises(ValueError, match="obsid 3552 is not in the obspar archive"):
        aca_l0.get_files(obsid=3552, data_root=real_archive)


def test_get_files_by_obsid_on_a_simulated_archive(sim_l0_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path))
    obs = default_mission().observations("2012:001:00:00:00", "2012:001:06:00:00")[1]
    with pytest.raises(MissingDataError, match=f"mica update obspar --obsid {obs.obsid}"):
        aca_l0.get_files(obsid=obs.obsid, data_root=sim_l0_archive)  # no schedule guess
    report = update_obsid_archive(OBSPAR, "sim", [obs.obsid])  # into <MICA_ARCHIVE>/obspar
    assert report.ok, report.summary()
    files = aca_l0.get_files(obsid=obs.obsid, data_root=sim_l0_archive)
    assert files
    for path in files:
        header = fits.getheader(path, 1)
        assert header["TSTART"] < obs.tstop and header["TSTOP"] > obs.tstart


class _Ocat(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        type(self).requests.append(self.path)
        if not self.path.startswith("/srservices/ocatDetails.do"):
            body, code = b"Not Found", 404
        else:
            body = (
                b"# Ocat details (test)\nObs ID\tStart Date\tExposure (ks)\n5N\t19S\t10N\n"
                b"6000\t2005-03-15 10:20:30\t50.1\n"
            )
            code = 200
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_obsid_interval_of_a_cda_archive_never_asks_the_ocat(tmp_path):
    """A reader never calls a source: an obsid without its obspar is an error naming the
    update, even where the archive's source (the Ocat) knows its interval."""
    from mica.sources import make_source

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ocat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        resolve_source(f"cda:{base}", ASP_L1, tmp_path / "asp1")  # a cda-filled archive
        with pytest.raises(MissingDataError, match="mica update obspar --obsid 6000"):
            obsid_interval(6000, data_root=tmp_path / "obspar")
        assert not _Ocat.requests
        start, stop = make_source(f"cda:{base}").obsid_interval(6000)  # the source's own
        assert start == pytest.approx(to_secs("2005-03-15T10:20:30"))
        assert stop - start == pytest.approx(50100.0)
        assert any("obsid=6000" in r for r in _Ocat.requests)
    finally:
        server.shutdown()
        server.server_close()


def test_check_reports_provenance(real_archive, real_l0_dir, tmp_path):
    from mica.cli import main

    assert (
        f"aca-l0 provenance: real, source dir:{real_l0_dir}"
        in check_archive(L0, data_root=real_archive).summary()
    )
    result = CliRunner().invoke(main, ["--archive", str(real_archive.parent), "check"])
    assert "aca-l0 provenance: real, source dir:" in result.output, result.output
    assert "obspar provenance: unknown" in result.output
    assert "aca-dark provenance: unknown" in result.output
    record = json.loads((real_archive / ARCHIVE_JSON).read_text())
    assert record["kind"] == "real"


def test_obspar_simulated_mirror_fixes_a_simulated_archive(tmp_path):
    """A dir: folder of simulated files makes a simulated archive (read from its files)."""
    from mica.engine.obsid_update import update_obsid_archive
    from mica.sim import obspar

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    obspar.write_obspars(5438, 1, mirror)
    report = update_obsid_archive(OBSPAR, f"dir:{mirror}", [5438], data_root=tmp_path / "obspar")
    assert report.ok, report.summary()
    assert read_provenance(tmp_path / "obspar")["kind"] == "simulated"
    with gzip.open(next(mirror.iterdir()), "rt") as fh:
        assert fh.readline().startswith("simulated,b,h,yes")


def test_repair_refuses_a_simulated_file_left_in_a_real_archive(real_archive, tmp_path):
    """`mica check --repair` indexes a file it finds without an index row only when its kind
    matches the archive's: a simulated file in a real archive is quarantined instead."""
    sim = _sim_l0_file(tmp_path)
    row = describe_file(L0, sim.name, sim)
    target = L0.path(row, real_archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sim, target)
    report = check_archive(L0, data_root=real_archive, repair=True)
    assert any(f"quarantined {sim.name}: is a simulated" in r for r in report.repairs), report
    assert not target.exists() and (real_archive / "rejected" / sim.name).exists()
    with ArchiveIndex.open_for_reading(L0, real_archive) as index:
        assert index.get(sim.name) is None and len(index.query()) == 36
