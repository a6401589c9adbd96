"""Aspect solution V&V (mica.vv): the original's examples, residuals by hand, the summary table,
dispositions against the simulator's ground truth, kills, bad inputs, the HTML report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tables
from astropy.io import fits
from click.testing import CliRunner

from mica import quaternion
from mica.archive import asp_l1, obspar
from mica.cli import main
from mica.engine.derived import check_derived, update_derived
from mica.engine.obsid_update import update_obsid_archive
from mica.errors import DamagedFileError
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import asp_l1 as sim
from mica.sim.mission import default_mission
from mica.vv import (
    Obi,
    VVLookupError,
    get_arch_vv,
    get_rms_data,
    get_vv,
    get_vv_dir,
    get_vv_files,
)
from mica.vv.product import VV
from mica.vv.report import read_slots
from mica.vv.table import SPEC_COLUMNS

DECIMATE = "40"


def _first(kind: str) -> int:
    for obs in default_mission().observations("2005:001", "2013:001"):
        if sim.seeded_problem(obs.obsid) == kind:
            return obs.obsid
    raise AssertionError(kind)


BAD_STAR = _first("bad_star")
MISSING = _first("missing_slot")
OBSIDS = [2121, BAD_STAR, MISSING]

# the original's 37 columns of vv.h5, in order
ORIGINAL_COLUMNS = (
    "obsid revision isdefault aspect_1_id used vv_version ap_date tstart tstop sim_z "
    "sim_z_offset instrument ra_pnt dec_pnt roll_pnt slot type n_pts rad_off frac_dy_big "
    "frac_dz_big frac_mag_big mean_y mean_z dy_mean dy_med dy_rms dz_mean dz_med dz_rms "
    "dr_mean dr_med dr_rms mag_mean mag_med mag_rms mean_aacccdpt"
).split()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """asp1 + obspar of 2121 (revisions 2 and 3, default 2), a bad-star and a missing-slot
    obsid, then ``mica update vv`` through the derived-product runner."""
    root = tmp_path_factory.mktemp("vvarch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", DECIMATE)
        for product in (ASP_L1, OBSPAR):
            report = update_obsid_archive(product, "sim", OBSIDS, data_root=root / product.subdir)
            assert report.ok, report.summary()
    report = update_derived(VV, archive=root, data_root=root / "vv")
    assert report.ok and len(report.done) == 4, report.summary()
    return root


@pytest.fixture
def in_archive(archive, monkeypatch) -> Path:
    monkeypatch.setenv("MICA_ARCHIVE", str(archive))
    return archive


def _copy(archive: Path, dest: Path) -> Path:
    shutil.copytree(archive, dest, symlinks=True)
    return dest


def test_seed_examples(in_archive, tmp_path):
    rev_default = asp_l1.get_obs_dirs(2121, in_archive / "asp1")["default"]
    assert get_vv_dir(2121) == str(in_archive / "vv" / "02" / Path(rev_default).name)
    assert get_vv_dir(2121, version=3).endswith("vv/02/02121_v03")
    files = [Path(f).name for f in get_vv_files(2121)]
    assert {"vv_report.json", "vv_slots.h5", "report.html", "slot_0.png"} <= set(files)
    assert not [f for f in files if f.endswith((".pkl", "shelf"))]  # never pickle
    obs = get_vv(2121)
    assert obs["slots"]["7"]["dz_rms"] > 0
    data = get_rms_data()
    mine = data[(data["obsid"] == 2121) & (data["revision"] == obs["revision"])]
    assert np.allclose(sorted(mine["dz_rms"]), sorted(s["dz_rms"] for s in obs["slots"].values()))
    obi = get_arch_vv(2121)
    assert obi.revision == 3  # 'last'
    assert set(obi.info()["sim"]) == {
        "max_d_dy",
        "max_d_dz",
        "max_medf_dy",
        "max_medf_dz",
        "min_medf_dy",
        "min_medf_dz",
    }
    figs = obi.plot_slot(4)
    assert figs["all"].axes and set(obi.plot_slot(4, singles=True)) == {
        "ayz",
        "ayzf",
        "ay",
        "az",
        "am",
    }
    assert obi.plot_slot(7 if 7 not in obi.all_slot_data else 99) == {}
    # a directory that is not in the archive
    aspect_dir = shutil.copytree(asp_l1.get_obs_dirs(2121, in_archive / "asp1")[3], tmp_path / "a")
    par = obspar.get_obspar_file(2121, data_root=in_archive / "obspar")
    other = Obi(par, aspect_dir)
    assert other.info()["slots"]["4"]["dy_rms"] == obi.info()["slots"]["4"]["dy_rms"]
    with pytest.raises(VVLookupError, match="2121"):
        get_vv_dir(2121, version=9)
    with pytest.raises(VVLookupError):
        get_arch_vv(2121, version=9)


def test_info_and_json_have_the_spec_keys(in_archive):
    info = get_vv(2121, "last")
    top = {"obsid", "revision", "tstart", "tstop", "fidprops", "gsprops", "sim_z",
           "sim_z_offset", "ra_pnt", "dec_pnt", "roll_pnt", "instrument", "intervals", "slots",
           "sim", "vv_version", "errors", "aspect_1_id", "ap_date", "disposition"}  # fmt: skip
    assert top <= set(info) and info["vv_version"] == 4
    assert len(info["intervals"]) == len(info["gsprops"]) == len(info["fidprops"]) > 1
    assert set(info["intervals"][0]) == {
        "ASCDSVER", "CALDBVER", "DATE", "OBI_NUM", "OBS_ID", "REVISION", "TSTART", "TSTOP"
    }  # fmt: skip
    stats = {f"{ax}_{k}" for ax in ("dr", "dy", "dz", "mag")
             for k in ("n_samples", "bad_samples", "mean", "med", "rms")}  # fmt: skip
    stats |= {"frac_dr_big", "frac_dy_big", "frac_dz_big", "frac_mag_big", "rad_off", "n_pts",
              "mean_y", "mean_z", "enc_rad1", "enc_rad2", "slot", "type", "id_status"}  # fmt: skip
    for key, slot in info["slots"].items():
        assert stats <= set(slot), key
        if slot["type"] != "FID":
            assert "cel_loc_flag" in slot
    assert set(info["disposition"]) >= {"status", "reasons", "repro_without"}
    assert "pos_eci" in info["gsprops"][0][0] and len(info["gsprops"][0][0]["pos_eci"]) == 3


def test_summary_table_columns(in_archive):
    assert list(SPEC_COLUMNS) == ORIGINAL_COLUMNS
    data = get_rms_data()
    assert list(data.dtype.names) == [*ORIGINAL_COLUMNS, "disposition", "reasons"]
    with tables.open_file(VV.table().path) as h5:
        node = h5.root.vv
        assert node.nrows == len(data)
        assert len(node.read_where("obsid == 2121")) == np.count_nonzero(data["obsid"] == 2121)
    keys = {(int(o), int(r)) for o, r in zip(data["obsid"], data["revision"], strict=True)}
    procs = {(r["obsid"], r["revision"]) for r in asp_l1.get_processing(None, in_archive / "asp1")}
    assert keys == procs
    default = asp_l1.get_obs_dirs(2121, in_archive / "asp1")["default"]
    rows = data[data["obsid"] == 2121]
    assert set(rows["revision"][rows["isdefault"] == 1]) == {int(default[-2:])}
    for row in asp_l1.get_processing(2121, in_archive / "asp1"):
        assert row["vv_complete"] == 4


def _by_hand(folder: Path, slot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy, dz, qual of a guide slot over every interval, by numpy from the FITS files."""
    dys, dzs, quals = [], [], []
    for asol_f in sorted(folder.glob("pcadf*N*_asol1.fits*")):
        stem = asol_f.name.split("_asol1")[0]
        with fits.open(asol_f) as h:
            if h[1].header["CONTENT"] != "ASPSOL":
                continue
            asol = h[1].data
            t_sol, q_sol = asol["time"], asol["q_att_raw" if "q_att_raw" in asol.names else "q_att"]
        acen = fits.getdata(next(folder.glob(f"{stem}_acen1.fits*")))
        gspr = fits.getdata(next(folder.glob(f"{stem}_gspr1.fits*")))
        mis = fits.getdata(next(folder.glob(f"{stem}_acal1.fits*")))["aca_misalign"][0]
        sel = (acen["slot"] == slot) & (acen["alg"] == 8)
        sel &= (acen["time"] >= t_sol[0]) & (acen["time"] <= t_sol[-1])
        t = acen["time"][sel]
        q = np.stack([np.interp(t, t_sol, q_sol[:, k]) for k in range(4)], -1)
        eci = gspr["pos_eci"][gspr["slot"] == slot][0]
        d = np.einsum("ij,nkj,k->ni", mis.reshape(3, 3), quaternion.to_transform(q), eci)
        yag = np.arctan2(d[:, 1], d[:, 0]) * 206264.81  # R2A, arcsec per radian
        zag = np.arctan2(d[:, 2], d[:, 0]) * 206264.81
        dys.append(acen["ang_y"][sel] * 3600 - yag)
        dzs.append(acen["ang_z"][sel] * 3600 - zag)
        quals.append(acen["status"][sel])
    return np.concatenate(dys), np.concatenate(dzs), np.concatenate(quals)


def test_residuals_by_hand_and_interval_combination(in_archive):
    folder = Path(asp_l1.get_obs_dirs(2121, in_archive / "asp1")["last"])
    obi = get_arch_vv(2121)
    assert len(obi.aspect_intervals) > 1  # several intervals, combined
    slot = next(m["slot"] for m in obi.guide_list if m["type"] == "GUIDE")
    dy, dz, qual = _by_hand(folder, slot)
    mine = obi.all_slot_data[slot]
    assert np.allclose(mine["dy"], dy, atol=1e-6) and np.allclose(mine["dz"], dz, atol=1e-6)
    good = qual == 0
    med = np.median(dy[good])
    rep = obi.info()["slots"][str(slot)]
    assert rep["n_pts"] == len(dy) and rep["dy_bad_samples"] == np.count_nonzero(~good)
    assert rep["dy_med"] == pytest.approx(med)
    assert rep["dy_rms"] == pytest.approx(np.sqrt(np.mean((dy[good] - med) ** 2)))
    assert rep["frac_dy_big"] == pytest.approx(np.sum(np.abs(dy[good] - med) > 0.7) / len(dy))
    # the stored per-slot arrays are the same numbers
    stored = read_slots(Path(get_vv_dir(2121, "last")) / "vv_slots.h5")[str(slot)]
    assert np.allclose(stored["dy"], dy, atol=1e-6)
    assert isinstance(stored["mag"], np.ma.MaskedArray)
    # AI starts are marked, and every interval contributes
    assert len(mine["ai_starts"]) == len(obi.aspect_intervals)


def test_dispositions_match_the_ground_truth(in_archive, tmp_path):
    truth = json.loads(sim.write_ground_truth(tmp_path / "truth.json", OBSIDS).read_text())
    assert truth["fault_kinds"] == sim.FAULT_KINDS
    bad = get_vv(BAD_STAR)["disposition"]
    assert bad["status"] == "BAD"
    assert bad["repro_without"] == truth["obsids"][str(BAD_STAR)]["slot"]
    assert "reprocess without that star" in " ".join(bad["reasons"])
    miss = get_vv(MISSING)["disposition"]
    slot = truth["obsids"][str(MISSING)]["slot"]
    assert miss["status"] in ("WARN", "BAD") and slot in miss["warn_slots"]
    assert any(f"slot {slot} has no centroids" in r for r in miss["reasons"])
    assert truth["obsids"]["2121"]["fault"] is None
    for rev in asp_l1.get_obs_dirs(2121, in_archive / "asp1")["revisions"]:
        assert get_vv(2121, rev)["disposition"]["status"] != "BAD"


def test_cli_vv_and_check_list_bad(in_archive):
    runner = CliRunner()
    result = runner.invoke(main, ["vv", "--obsid", str(BAD_STAR)])
    assert result.exit_code == 1 and "BAD" in result.output
    assert "reprocess without that star" in result.output
    result = runner.invoke(main, ["vv", "--obsid", "2121", "--version", "last", "--compute"])
    assert "computed from the aspect L1 archive" in result.output
    assert result.exit_code in (0, 1)
    result = runner.invoke(main, ["vv", "--obsid", "31999"])
    assert result.exit_code == 2 and "31999" in result.output
    result = runner.invoke(main, ["check"])
    assert f"obsid {BAD_STAR} revision" in result.output and "V&V BAD" in result.output


_KILL = """
import os, signal, sys
from mica.engine.derived import update_derived
from mica.vv.product import VV
VV.plots = False  # the table's generations are the subject, not the slot plots
def progress(done, total, label):
    if done >= 2:
        os.kill(os.getpid(), signal.SIGKILL)
if __name__ == "__main__":
    update_derived(VV, archive=sys.argv[1], data_root=sys.argv[1] + '/vv', checkpoint=1,
                   progress=progress)
"""


def test_killed_update_leaves_the_table_and_the_rerun_completes(archive, tmp_path, monkeypatch):
    # the slot plots (most of V&V's time) are not the subject
    monkeypatch.setattr(VV, "plots", False)
    root = _copy(archive, tmp_path / "arch")
    shutil.rmtree(root / "vv")
    update_derived(VV, archive=root, data_root=root / "vv", obsids=[BAD_STAR])
    before = VV.table(root / "vv").read()
    script = tmp_path / "kill.py"
    script.write_text(_KILL)
    proc = subprocess.run([sys.executable, str(script), str(root)], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    partial = VV.table(root / "vv").read()  # the last whole generation
    assert len(partial) > len(before)
    report = update_derived(VV, archive=root, data_root=root / "vv")
    assert report.ok
    rows = VV.table(root / "vv").read()
    assert len({(o, r) for o, r in zip(rows["obsid"], rows["revision"], strict=True)}) == 4
    check = check_derived(VV, root / "vv")
    assert check.ok and not check.repairs, check.summary()
    leftovers = [p for p in (root / "vv").rglob(".*") if p.name != ".vv.h5"]
    assert not leftovers and not (root / "vv" / "staging").exists()


def test_corrupt_or_missing_inputs_are_recorded_failures_naming_the_file(
    archive, tmp_path, monkeypatch
):
    monkeypatch.setattr(VV, "plots", False)  # the failures are the subject, not the plots
    root = _copy(archive, tmp_path / "arch")
    shutil.rmtree(root / "vv")
    folder = Path(asp_l1.get_obs_dirs(BAD_STAR, root / "asp1")["default"])
    acen = sorted(folder.glob("*_acen1.fits*"))[0]
    acen.write_bytes(acen.read_bytes()[:2000])  # truncated
    par = Path(obspar.get_obspar_file(MISSING, data_root=root / "obspar"))
    par.unlink()
    report = update_derived(VV, archive=root, data_root=root / "vv")
    reasons = {k[0]: r for k, r in report.failed.items()}
    assert acen.name in reasons[BAD_STAR]
    assert par.name in reasons[MISSING] or "obspar" in reasons[MISSING]
    notes = " ".join(VV.remarks(root / "vv"))
    assert f"obsid {BAD_STAR} revision" in notes and "failed" in notes
    assert any(k[0] == 2121 for k in report.done)  # the others are done


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_html_report_renders_offline_in_headless_chromium(in_archive, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (.ci/run installs it)")
    src = Path(get_vv_dir(BAD_STAR))
    page = shutil.copytree(src, tmp_path / "report")
    html = (page / "report.html").read_text()
    assert "<script" not in html and "http" not in html  # offline: nothing fetched
    probe = (
        "<script>window.addEventListener('load', () => { const p = document.createElement("
        "'p'); p.id = 'widths'; p.textContent = Array.from(document.images).map(i => "
        "i.naturalWidth).join(','); document.body.appendChild(p); });</script>"
    )
    (page / "probe.html").write_text(html.replace("</body>", probe + "</body>"))
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]  # fmt: skip
    dom = subprocess.run(
        [*cmd, "--dump-dom", (page / "probe.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'id="slots"' in dom and "BAD" in dom and "reprocess without that star" in dom
    assert dom.count("<tr") >= 1 + len(get_vv(BAD_STAR)["slots"])
    widths = dom.split('id="widths">')[1].split("<")[0].split(",")
    assert len(widths) == len(list(page.glob("slot_*.png"))) >= 6
    assert all(int(w) > 100 for w in widths)  # every image loaded
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*cmd, f"--screenshot={shot}", "--window-size=1000,800", (page / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10000


def test_fast_table_reader_equals_astropy(tmp_path):
    """`read_table` reads plain tables straight into numpy and the rest through astropy:
    the same columns, shapes and header values either way; damage names the file."""
    from mica.vv.core import VVInputError, read_header, read_table

    n = 7
    rng = np.random.default_rng(3)
    cols = [
        fits.Column("time", "1D", array=rng.random(n) * 1e8),
        fits.Column("ang_y", "1E", array=rng.random(n)),
        fits.Column("slot", "1I", array=np.arange(n)),
        fits.Column("id", "1J", array=np.arange(n) * 100000),
        fits.Column("flag", "1B", array=np.arange(n)),
        fits.Column("q_att", "4D", array=rng.random((n, 4))),
        fits.Column("mis", "9D", dim="(3,3)", array=rng.random((n, 3, 3))),
        fits.Column("id_status", "8A", array=["GOOD", "BAD ", "x'y"] + ["OK"] * (n - 3)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["TSTART"] = (123456789.25, "a float")
    hdu.header["REVISION"] = 3
    hdu.header["OBS_ID"] = "02121"
    hdu.header["CLOCKAPP"] = True
    hdu.header["NOTE"] = "it's"
    plain = tmp_path / "plain.fits.gz"
    hdu.writeto(plain)
    scaled = tmp_path / "scaled.fits"  # TZERO: not a plain column, astropy reads it
    fits.BinTableHDU.from_columns(
        [*cols, fits.Column("bgd", "1I", bzero=32768, array=np.arange(n) + 40000)],
        header=hdu.header,
    ).writeto(scaled)
    for path in (plain, scaled):
        got, header = read_table(path)
        with fits.open(path) as hdus:
            want = hdus[1].data
            for name in want.columns.names:
                assert np.array_equal(np.asarray(got[name.lower()]), np.asarray(want[name]))
                assert got[name.lower()].shape == np.asarray(want[name]).shape
            for key in ("TSTART", "REVISION", "OBS_ID", "CLOCKAPP", "NOTE", "NAXIS2"):
                assert header[key] == hdus[1].header[key]
                assert type(header[key]) is type(hdus[1].header[key])
        assert read_header(path)["OBS_ID"] == "02121"
    assert got["bgd"].tolist() == (np.arange(n) + 40000).tolist()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(scaled.read_bytes()[: scaled.stat().st_size - 2880 + 100])  # in the data
    with pytest.raises(VVInputError, match="cut.fits"):
        read_table(cut)
    with pytest.raises(VVInputError, match="plain.fits.gz"):
        (tmp_path / "plain.fits.gz").write_bytes(plain.read_bytes()[:-40])
        read_table(plain)


def test_vv_folders_are_checked_against_their_digests_and_repaired(archive, tmp_path):
    root = _copy(archive, tmp_path / "arch")
    folders = VV.unit_folders(root / "vv")
    assert sorted(folders) == sorted(OBSIDS) and len(sum(folders.values(), [])) == 4
    folder = Path(get_vv_dir(2121, version=3, data_root=root / "vv"))
    recorded = json.loads((folder / "digests.json").read_text())["files"]
    assert {"vv_report.json", "vv_slots.h5", "report.html", "slot_4.png"} <= set(recorded)
    assert check_derived(VV, root / "vv", verify_store=True).ok

    report = folder / "vv_report.json"
    info = get_vv(2121, version=3, data_root=root / "vv")
    text = report.read_text()
    report.write_text(text.replace('"obsid": 2121', '"obsid": 2122', 1))  # valid JSON
    with pytest.raises(DamagedFileError) as err:
        get_vv(2121, version=3, data_root=root / "vv")
    assert err.value.path == report and "`mica update vv --obsid 2121`" in str(err.value)
    report.write_text(text)
    assert get_vv(2121, version=3, data_root=root / "vv") == info

    plot = folder / "slot_4.png"
    data = bytearray(plot.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    plot.write_bytes(bytes(data))
    assert check_derived(VV, root / "vv").ok  # the bytes are read by --verify-store only
    check = check_derived(VV, root / "vv", verify_store=True)
    (problem,) = check.problems
    assert str(folder) in problem and "slot_4.png does not match its digest" in problem
    assert "`mica update vv --obsid 2121`" in problem

    (folder / "vv_slots.h5").unlink()
    (problem,) = check_derived(VV, root / "vv").problems
    assert "vv_slots.h5 does not read" in problem

    repaired = check_derived(VV, root / "vv", repair=True)
    assert any("wrote again" in line for line in repaired.repairs), repaired.summary()
    assert check_derived(VV, root / "vv", verify_store=True).ok
    assert plot.read_bytes() != bytes(data) and (folder / "vv_slots.h5").exists()


def test_a_default_link_that_leads_nowhere_is_named_and_repaired(archive, tmp_path):
    """A default link made to point at itself (or at a folder gone) is not taken for 'no V&V
    yet': the reader says the link leads nowhere, the check names it and --repair makes it
    again."""
    root = _copy(archive, tmp_path / "arch")
    info = get_vv(2121, data_root=root / "vv")
    link = Path(get_vv_dir(2121, data_root=root / "vv")).parent / "02121"
    assert link.is_symlink()
    link.unlink()
    link.symlink_to(link.name)  # a link to itself
    with pytest.raises(VVLookupError, match="leads nowhere"):
        get_vv(2121, data_root=root / "vv")
    (problem,) = check_derived(VV, root / "vv").problems
    assert f"link {link} points to '02121', not a V&V folder of its obsid" in problem
    assert "`mica update vv --obsid 2121`" in problem
    repaired = check_derived(VV, root / "vv", repair=True)
    assert any("wrote again" in line for line in repaired.repairs), repaired.summary()
    assert check_derived(VV, root / "vv").ok
    assert get_vv(2121, data_root=root / "vv") == info


def test_a_folder_that_lost_its_digests_is_refused_and_repaired(archive, tmp_path):
    """A V&V folder installed with digests.json says so in its vv_slots.h5: without it, the
    report is not read unchecked (a changed byte would be served), the check names it and
    --repair computes the obsid again."""
    root = _copy(archive, tmp_path / "arch")
    folder = Path(get_vv_dir(2121, version=3, data_root=root / "vv"))
    (folder / "digests.json").unlink()
    with pytest.raises(DamagedFileError, match="has lost its digests.json"):
        get_vv(2121, version=3, data_root=root / "vv")
    (problem,) = check_derived(VV, root / "vv").problems
    assert problem.startswith(f"{folder}: has lost its digests.json (its vv_slots.h5 was")
    assert "`mica update vv --obsid 2121`" in problem
    repaired = check_derived(VV, root / "vv", repair=True)
    assert any("wrote again" in line for line in repaired.repairs), repaired.summary()
    assert check_derived(VV, root / "vv", verify_store=True).ok
    assert get_vv(2121, version=3, data_root=root / "vv")["obsid"] == 2121
