"""`mica.archive.cda`: the CDA web services against a server on 127.0.0.1.

The server (http.server in a thread, the handler and fixtures of ``test_cda_source``) answers
as the services do: the Ocat summary and details as quasi-RDB text (comment lines, header,
widths or ``N`` types, tab-separated rows; comments alone when nothing matches), the archive
file list as tab-separated text with thousands commas, proposal abstracts as an HTML page.
The Ocat rows are made up, in the services' formats and with the original's 124 detail and
26 summary columns.
"""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qs

import numpy as np
import pytest
from astropy.table import Table

from mica.archive.cda import (
    get_archive_file_list,
    get_ocat_local,
    get_ocat_web,
    get_proposal_abstract,
)
from mica.archive.cda.services import URL_CDA_SERVICES, update_ocat_local
from tests.conftest import REPO_ROOT
from tests.sources.test_cda_source import Handler, serve

#: the details' columns, as the original named them
DETAIL = (
    "seq_num status obsid pr_num target_name grid_name instr grat type obs_cycle prop_cycle "
    "charge_cycle start_date public_avail readout_detector datamode joint hst jwst noao nrao "
    "rxte spitzer suzaku xmm swift nustar category seg_max_num prop_title pi_name observer "
    "app_exp exp_time ra dec soe_roll time_crit y_off z_off x_sim z_sim raster obj_type obj "
    "photo vmag est_cnt_rate forder_cnt_rate count_rate event_count dither y_amp y_freq "
    "y_phase z_amp z_freq z_phase roll window unint pointing_update monitor pre_id mon_min "
    "mon_max group_id constr epoch period pstart ps_marg pend pe_marg multitel multitel_obs "
    "multitel_int constr_rmk too_type too_start too_stop alt_group alt_trig simode hrc "
    "spect_mode blank_en u_hi v_hi u_lo v_lo timing z_blk acis mode bep_pack "
    "dropped_chip_cnt i0 i1 i2 i3 s0 s1 s2 s3 s4 s5 spectra_max_count "
    "multiple_spectral_lines subary strt_row row_cnt d_cyc sec_cnt pr_time sec_time f_time "
    "oc_sum oc_row oc_col evfil evfil_lo evfil_ra efficient spwin"
).split()
#: the summary's columns as the service names them, and as the original renamed them
SUMMARY_RAW = [
    "Seq Num", "Obs ID", "Instrument", "Grating", "Appr Exp (ks)", "Exposure (ks)",
    "Target Name", "PI Name", "RA", "Dec", "Status", "Data Mode", "Exp Mode", "Avg Cnt Rate",
    "Event Count", "Start Date", "Public Release Date", "Proposal Num", "Science Category",
    "Type", "Obs Cycle", "Prop Cycle", "Joint", "Grid Name", "Alternate Group",
    "Appr. Triggers",
]  # fmt: skip
SUMMARY = (
    "seq_num obsid instr grat app_exp exp_time target_name pi_name ra dec status datamode "
    "mode count_rate event_count start_date public_avail pr_num category type obs_cycle "
    "prop_cycle joint grid_name alt_group alt_trig"
).split()
#: details columns the service gives raw names other than the original's
DETAIL_RAW = {"seq_num": "Seq Num", "target_name": "Target Name", "exp_time": "Exp Time (ks)",
              "app_exp": "App Exp (ks)", "start_date": "Start Date"}  # fmt: skip
NUMERIC = set(
    "obsid seg_max_num app_exp exp_time soe_roll y_off z_off x_sim z_sim vmag est_cnt_rate "
    "forder_cnt_rate count_rate event_count y_amp y_freq y_phase z_amp z_freq z_phase "
    "f_time evfil_lo evfil_ra".split()
)
ROWS = [
    dict(seq_num="700958", status="archived", obsid=4876, pr_num="05700580",
         target_name="3C273-JET", instr="ACIS-S", grat="NONE", type="GO",
         start_date="2004-11-30 10:12:41", public_avail="2005-12-05 10:16:12",
         pi_name="Jester", observer="Jester", app_exp=40.0, exp_time=38.6,
         ra="12 29 06.70", dec="+02 03 08.60", soe_roll=211.4, y_amp=8.0, count_rate=1.5,
         _deg=(187.2779, 2.0524)),
    dict(seq_num="700989", status="archived", obsid=4911, pr_num="05700597",
         target_name="SDSSJ123215.81+020610.0", instr="ACIS-S", grat="NONE", type="GO",
         start_date="2004-03-05 03:13:33", pi_name="Brandt", observer="Brandt",
         app_exp=5.0, exp_time=4.9, ra="12 32 15.82", dec="+02 06 10.10", soe_roll=93.2,
         _deg=(188.0659, 2.1028)),
    dict(seq_num="900515", status="archived", obsid=8000, pr_num="08900073",
         target_name="COSMOS", instr="ACIS-I", grat="NONE", type="GO",
         start_date="2007-01-02 21:20:43", pi_name="Elvis", observer="Günther Hasinger",
         app_exp=50.0, exp_time=48.3, ra="10 00 28.60", dec="+02 12 21.00", soe_roll=60.0,
         _deg=(150.1192, 2.2058)),
    dict(seq_num="200235", status="archived", obsid=3552, pr_num="04200235",
         target_name="NGC 1234", instr="ACIS-I", grat="NONE", type="GO",
         start_date="2003-08-03 03:05:31", pi_name="Müller", observer="Müller",
         app_exp=5.5, exp_time=5.4, ra="03 10 00.00", dec="-01 30 00.00", soe_roll=10.0,
         _deg=(47.5, -1.5)),
]  # fmt: skip
ROLL_REQS = ["obsid", "roll_const", "roll_ang", "roll_tol", "roll_180"]
ACIS_WINDOWS = "obsid start_row start_col sample_rate height width low_energy range chip include"
TIME_REQS = ["obsid", "win_const", "tstart_request", "tstop_request"]
ABSTRACT = (
    "We propose the Chandra-COSMOS survey: 36 densely tiled observations will cover the "
    "central 0.7 sq.deg. COSMOS field to a uniform 200ksec depth. Chandra enables the study "
    "of: (1) the environment; (2) interactions between galaxies; (3) groups and clusters: "
    "their influence on galaxy evolution."
)
FILES_2365 = [
    ("pcadf120041846N007_asol1.fits", 7300800),
    ("pcadf120048520N007_asol1.fits", 4728960),
]


def _wanted(row: dict, query: dict[str, str]) -> bool:
    """Whether a row matches the service's filters the tests use."""
    if "obsid" in query:
        wanted = set()
        for part in query["obsid"].split(","):
            lo, _, hi = part.partition("-")
            wanted |= set(range(int(lo), int(hi or lo) + 1))
        if row["obsid"] not in wanted:
            return False
    for key, col in (("target", "target_name"), ("observer", "observer"), ("piName", "pi_name")):
        text = query.get(key, "").lower().replace(" ", "")
        if text and text not in row.get(col, "").lower().replace(" ", ""):
            return False
    if "seqNum" in query and row["seq_num"] != query["seqNum"]:
        return False
    if "ra" in query:
        ra, dec = math.radians(float(query["ra"])), math.radians(float(query["dec"]))
        rra, rdec = (math.radians(x) for x in row["_deg"])
        cos = math.sin(dec) * math.sin(rdec) + math.cos(dec) * math.cos(rdec) * math.cos(ra - rra)
        if math.degrees(math.acos(min(1.0, cos))) * 60 > float(query.get("radius", 1.0)):
            return False
    return True


def _rdb(raw_names: list[str], names: list[str], rows: list[dict]) -> str:
    """The services' quasi-RDB text (comments only when there is no row)."""
    text = "# Chandra Observation Catalog (test server)\n#\n"
    if not rows:
        return text
    text += "\t".join(raw_names) + "\n"
    text += "\t".join("12N" if n in NUMERIC else "20" for n in names) + "\n"
    for row in rows:
        text += "\t".join(str(row.get(n, "")) for n in names) + "\n"
    return text


def _header_only(names: list[str]) -> str:
    return "# (test server)\n" + "\t".join(names) + "\n" + "\t".join("10" for _ in names) + "\n"


class Services(Handler):
    """The Ocat, file-list and abstract services (the file list from ``test_cda_source``)."""

    def _serve(self, url) -> None:
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.tree.queries.append((url.path, query))
        if url.path in ("/srservices/ocatList.do", "/srservices/ocatDetails.do"):
            if query.get("format") != "text":
                return self._send(400, b"format=text expected")
            if "rollReqs" in query:
                text = _header_only(ROLL_REQS) + f"{query['obsid']}\tY\t90.0\t5.0\tN\n"
            elif "acisWindows" in query:
                text = _header_only(ACIS_WINDOWS.split())
            elif "timeReqs" in query:
                text = _header_only(TIME_REQS)
            else:
                rows = [r for r in ROWS if _wanted(r, query)]
                if url.path.endswith("ocatList.do"):
                    text = _rdb(SUMMARY_RAW, SUMMARY, rows)
                else:
                    text = _rdb([DETAIL_RAW.get(n, n) for n in DETAIL], DETAIL, rows)
            return self._send(200, text.encode())
        if url.path == "/srservices/propAbstract.do":
            if query.get("obsid") == "8000" or query.get("propNum") == "08900073":
                body = (
                    "<html><head><title>Proposal Abstract</title></head><body>\n"
                    "<b>Proposal Title:</b> THE CHANDRA-COSMOS SURVEY<br>\n\n"
                    "<b>Proposal Number:</b> 08900073<br>\n"
                    "<b>Principal Investigator:</b> Martin Elvis<br>\n"
                    f"<b>Abstract:</b><p>{ABSTRACT}</p>\n</body></html>"
                )
            else:
                body = "<html><body>No proposal found</body></html>"
            return self._send(200, body.encode())
        return super()._serve(url)


@pytest.fixture()
def cda(tmp_path, monkeypatch):
    """The services on 127.0.0.1, ``MICA_CDA_URL`` pointing at them."""
    published = tmp_path / "published"
    published.mkdir()
    for tree in serve(published, tmp_path, Services):
        tree.queries = []
        tree.sizes[2365] = list(FILES_2365)
        monkeypatch.setenv("MICA_CDA_URL", tree.url)
        yield tree


def test_default_url_is_the_public_one():
    assert URL_CDA_SERVICES == "https://cda.harvard.edu/srservices"


def test_ocat_details_by_obsid(cda):
    dat = get_ocat_web(obsid=4911)
    assert isinstance(dat, dict) and list(dat) == DETAIL
    assert dat["target_name"] == "SDSSJ123215.81+020610.0" and dat["obsid"] == 4911
    assert dat["pre_id"] is np.ma.masked
    assert dat["ra"] == pytest.approx(188.06591, abs=1e-4)
    assert dat["dec"] == pytest.approx(2.10281, abs=1e-4)
    path, query = cda.queries[-1]
    assert path == "/srservices/ocatDetails.do" and query["obsid"] == "4911"
    assert query["outputCoordUnits"] == "sexagesimal"  # decimal would give 3 digits

    table = get_ocat_web(obsid=4911, return_type="table")
    assert isinstance(table, Table) and table.colnames == DETAIL and len(table) == 1
    assert table["obsid"].dtype.kind == "i" and table["exp_time"].dtype.kind == "f"
    assert table["seq_num"].dtype.kind == "U" and str(table["exp_time"].unit) == "ks"
    assert table["ra"].dtype.kind == "f" and table[0]["pre_id"] is np.ma.masked


def test_ocat_summary(cda):
    dat = get_ocat_web(summary=True, obsid="4876,4911")
    assert dat.colnames == SUMMARY and list(dat["obsid"]) == [4876, 4911]
    assert cda.queries[-1][0] == "/srservices/ocatList.do"
    one = get_ocat_web(obsid=4876, summary=True)
    assert one["exp_time"] == 38.6 and one["app_exp"] == 40.0


def test_ocat_filtering_and_no_match(cda):
    dat = get_ocat_web(target_name="jet", obsid=4876, observer="Jester", seqNum="700958")
    assert isinstance(dat, dict) and dat["obsid"] == 4876
    empty = get_ocat_web(target_name="jet", obsid=4876, seqNum="700000", return_type="table")
    assert len(empty) == 0 and empty.colnames == DETAIL and empty["ra"].dtype.kind == "f"
    with pytest.raises(ValueError, match="failed to find obsid 999999"):
        get_ocat_web(obsid=999999)
    empty = get_ocat_web(obsid=999999, summary=True, return_type="table")
    assert len(empty) == 0 and empty.colnames == SUMMARY
    with pytest.raises(ValueError, match="invalid return_type"):
        get_ocat_web(obsid=8000, return_type="junk")


def test_ocat_cone_and_resolve(cda, monkeypatch):
    from mica.sources import cda_services

    dat = get_ocat_web(ra=188.06591331, dec=2.10280459, radius=0.5)
    assert list(dat["target_name"]) == ["SDSSJ123215.81+020610.0"]
    # the name resolver is a web query: here it answers with 3C 273's position
    monkeypatch.setattr(cda_services, "_resolve", lambda name: (187.27792, 2.05239))
    dat = get_ocat_web(target_name="3c273", resolve_name=True, radius=60)
    assert sorted(dat["obsid"]) == [4876, 4911]
    assert cda.queries[-1][1]["radius"] == "60"


def test_ocat_special_queries(cda):
    dat = get_ocat_web(obsid=8008, rollReqs="true")
    assert dat.colnames == ROLL_REQS and len(dat) == 1
    dat = get_ocat_web(obsid=8008, acisWindows="true")
    assert dat.colnames == ACIS_WINDOWS.split() and len(dat) == 0
    dat = get_ocat_web(obsid=8008, timeReqs="true")
    assert dat.colnames == TIME_REQS and len(dat) == 0


def test_ocat_local(cda, tmp_path, monkeypatch):
    datafile = tmp_path / "ocat.h5"
    update_ocat_local(datafile)
    dat = get_ocat_local(datafile=datafile)
    assert dat.colnames == DETAIL and len(dat) == len(ROWS)
    assert any("ü" in name for name in dat["observer"])  # UTF-8 round trip
    assert np.ma.getmaskarray(dat["pre_id"]).all()
    row = get_ocat_local(4876, datafile=datafile)
    assert row["target_name"] == "3C273-JET" and row["pre_id"] is np.ma.masked
    assert row["y_amp"] == 8.0 and get_ocat_local(4911, datafile=datafile)["y_amp"] is np.ma.masked
    assert row["ra"] == pytest.approx(187.27792, abs=1e-4)
    found = get_ocat_local(
        datafile=datafile, target_name="jet", obsid=4876, observer="Jester",
        where="seq_num=='700958'",
    )  # fmt: skip
    assert found["obsid"] == 4876
    assert (
        len(get_ocat_local(datafile=datafile, where="seq_num=='700000'", return_type="table")) == 0
    )
    near = get_ocat_local(datafile=datafile, ra=188.06591331, dec=2.10280459, radius=0.5)
    assert list(near["obsid"]) == [4911]
    with pytest.raises(ValueError, match="failed to find obsid 999999"):
        get_ocat_local(999999, datafile=datafile)
    # default: the archive root's ocat_target_table.h5
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path))
    (tmp_path / "ocat_target_table.h5").write_bytes(datafile.read_bytes())
    assert len(get_ocat_local()) == len(ROWS)


def test_archive_file_list(cda):
    dat = get_archive_file_list(obsid=2365, detector="pcad", subdetector="aca", level=1)
    assert dat.colnames == ["Filename", "Filesize", "Timestamp"]
    assert list(dat["Filename"]) == [n for n, _ in FILES_2365]
    assert list(dat["Filesize"]) == [s for _, s in FILES_2365]
    assert dat["Filesize"].dtype.kind == "i" and dat["Timestamp"][0] == "2012-08-23 01:59:39"
    query = cda.queries[-1][1]
    assert query == {
        "subdetector": "aca", "dataset": "flight", "detector": "pcad", "level": "1",
        "obsid": "2365",
    }  # fmt: skip


def test_proposal_abstract(cda):
    expected = {
        "proposal_title": "THE CHANDRA-COSMOS SURVEY",
        "proposal_number": "08900073",
        "principal_investigator": "Martin Elvis",
        "abstract": ABSTRACT,
    }
    assert get_proposal_abstract(obsid=8000) == expected
    assert get_proposal_abstract(propnum="08900073") == expected
    with pytest.warns(UserWarning) as caught:
        assert get_proposal_abstract(obsid=1) == {}
    assert [str(w.message) for w in caught] == [
        f"failed to find {name} in result"
        for name in ("Proposal Title", "Proposal Number", "Principal Investigator", "Abstract")
    ]
    with pytest.raises(ValueError, match="must provide obsid or propnum"):
        get_proposal_abstract()


def test_service_errors_are_runtime_errors(cda):
    from mica.sources.cda_services import _service_text

    with pytest.raises(RuntimeError, match="HTTP 400"):
        _service_text("ocat_details", format="xml")  # the test server asks for text
    with pytest.raises(ValueError, match="unknown service"):
        _service_text("nope")


def test_obsid_interval_reads_start_date_and_exp_time(cda):
    """The cda source's interval of an obsid: Ocat details ``start_date`` + ``exp_time``."""
    from mica.sources import make_source
    from mica.time import to_secs

    src = make_source(f"cda:{cda.url}")
    try:
        start, stop = src.obsid_interval(3552)
    finally:
        src.close()
    assert start == pytest.approx(to_secs("2003-08-03T03:05:31"))
    assert stop - start == pytest.approx(5400.0)


def test_layers_allow_only_this_module(tmp_path):
    """The readers contract names the one import of a source by mica.archive."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    ignores = re.findall(r"ignore_imports = \[(.*?)\]", text, re.DOTALL)
    assert ignores == ['"mica.archive.cda.services -> mica.sources.cda_services"']
