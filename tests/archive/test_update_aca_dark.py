"""`mica update aca-dark`: replicas in, calibrations out; temperatures, refusals, crashes.

Replica files come from the simulated upstream (written once per module into a folder served
by the dir: source, or generated on the fly by the sim source); CCD temperatures from an L0
archive built through the real ingest path.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner

from mica.archive.aca_dark import dark_cal
from mica.archive.aca_dark.update import (
    DARK,
    check_dark_archive,
    combine_replicas,
    update_aca_dark,
)
from mica.cli import main
from mica.engine.digests import FOLDER_DIGESTS
from mica.engine.fitscheck import open_checked
from mica.engine.index import ArchiveIndex
from mica.engine.lock import ArchiveBusy, UpdateLock
from mica.engine.provenance import read_provenance, write_provenance
from mica.engine.time_update import update_archive
from mica.errors import DamagedFileError, MissingArchiveError
from mica.products.aca_l0 import L0
from mica.sim import aca_dark as sim
from mica.sim.aca_l0 import plan_l0_files, write_l0_file
from mica.sim.mission import default_mission
from mica.sources import SourceError

GUESS_ID, HDR3_ID = "1999223", "2007006"
DAYS = {GUESS_ID: ("1999:223", "1999:224"), HDR3_ID: ("2007:006", "2007:007")}


def _l0_archive(files: list[Path], root: Path) -> Path:
    folder = files[0].parent
    t0 = min(L0.name_time(p.name) for p in files) - 3600
    t1 = max(L0.name_time(p.name) for p in files) + 3600
    report = update_archive(L0, f"dir:{folder}", t0, t1, days_at_once=3, data_root=root)
    assert report.ingested and not report.rejected
    return root


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> Path:
    """Upstream folder with the replica files of 1999223 and 2007006."""
    folder = tmp_path_factory.mktemp("replicas")
    for dark_id in (GUESS_ID, HDR3_ID):
        sim.write_replicas(sim.dark_cal_plan(dark_id), folder)
    return folder


@pytest.fixture(scope="module")
def l0_hdr3(tmp_path_factory) -> Path:
    """L0 archive with slots 6-7 (8x8, header-3 ccd_temp) around 2007006."""
    top = tmp_path_factory.mktemp("l0-hdr3")
    files = sim.write_hdr3_l0_files([sim.dark_cal_plan(HDR3_ID)], top / "upstream")
    return _l0_archive(files, top / "aca0")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, replicas, l0_hdr3) -> Path:
    """Both calibrations archived by an uninterrupted in-process update."""
    root = tmp_path_factory.mktemp("reference") / "aca_dark"
    for start, stop in DAYS.values():
        report = update_aca_dark(start, stop, f"dir:{replicas}", root, l0_root=l0_hdr3)
        assert not report.failed, report.summary()
    return root


def _subset(replicas: Path, dest: Path, dark_id: str = GUESS_ID) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in replicas.glob(f"acadark{dark_id}_r*.fits.gz"):
        shutil.copyfile(path, dest / path.name)
    return dest


def _nothing_written(root: Path) -> None:
    """No calibration folder, no temporary folder, no staging left behind."""
    assert not dark_cal.get_dark_cal_dirs(data_root=root)
    if root.exists():
        assert sorted(p.name for p in root.iterdir()) == ["archive.json", "update.lock"]


# ---------------------------------------------------------------------------------------
def test_replica_file_format(replicas):
    path = replicas / "acadark2007006_r2.fits.gz"
    assert DARK.filename_re.fullmatch(path.name)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    hdus, _ = open_checked(path, path.name, "PRIMARY")  # verifies CHECKSUM and DATASUM
    with hdus:
        h = hdus[0].header
        assert len(hdus) == 1 and h["BITPIX"] == -32 and hdus[0].data.shape == (1024, 1024)
        assert (h["DARKID"], h["REPLICA"], h["NREPLICA"], h["BUNIT"]) == (HDR3_ID, 2, 5, "e-/s")
        plan = sim.dark_cal_plan(HDR3_ID)
        assert (h["TSTART"], h["TSTOP"]) == plan.replicas[1] and h["INTEG"] > 0
        row = DARK.describe(path.name, hdus)
    assert row["image"].dtype == np.float32 and row["image"].dtype.isnative
    # Same plan, same bytes (deterministic upstream).
    assert sim.replica_bytes(plan, 2) == path.read_bytes()


def test_update_guess_and_hdr3(reference):
    m = default_mission()
    guess = dark_cal.get_dark_cal_props(GUESS_ID, data_root=reference)
    assert {r["ccd_temp_source"] for r in guess["replicas"]} == {"GUESS"}
    assert guess["ccd_temp"] == -10.0
    props = dark_cal.get_dark_cal_props(HDR3_ID, include_image=True, data_root=reference)
    plan = sim.dark_cal_plan(HDR3_ID)
    for rec, (t0, t1) in zip(props["replicas"], plan.replicas, strict=True):
        assert rec["ccd_temp_source"] == "HDR3"
        truth = float(np.ravel(m.ccd_temp_degc(0.5 * (t0 + t1)))[0])
        assert rec["ccd_temp"] == pytest.approx(truth, abs=0.02)
        assert rec["n_cosmic"] > 1000  # ~3200 events per replica, nearly all caught
    assert props["dur"] == pytest.approx(plan.tstop - plan.tstart, abs=1e-3)
    # The map is the true dark current at the calibration's temperature plus noise; cosmic
    # rays survive only where 3 of the 5 replicas were hit (~1 pixel expected).
    image = dark_cal.get_dark_cal_image(HDR3_ID, allow_negative=True, data_root=reference)
    truth = sim.true_dark_map(HDR3_ID) * dark_cal.dark_temp_scale(-14.0, props["ccd_temp"])
    resid = image - truth
    assert np.std(resid) < 1.6 and np.count_nonzero(resid > 30.0) <= 5
    assert np.mean(resid) == pytest.approx(0.0, abs=0.05)


def test_rerun_changes_nothing(tmp_path, replicas, reference):
    root = tmp_path / "aca_dark"
    shutil.copytree(reference, root)
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "update.lock"]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    report = update_aca_dark("1999:200", "2007:010", f"dir:{replicas}", root)
    assert sorted(report.unchanged) == [GUESS_ID, HDR3_ID] and not report.done
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    assert after == before
    assert sorted(p.name for p in root.iterdir()) == [
        GUESS_ID,
        HDR3_ID,
        "archive.json",
        "update.lock",
    ]
    # With no start, the update resumes from the last calibration (already there).
    report = update_aca_dark(None, "2007:010", f"dir:{replicas}", root)
    assert report.unchanged == [HDR3_ID] and not report.done


def test_same_result_from_sim_source(tmp_path, reference):
    root = tmp_path / "aca_dark"
    report = update_aca_dark(*DAYS[GUESS_ID], source="sim", data_root=root)
    assert list(report.done) == [GUESS_ID]
    for name in ("image.fits", "properties.json"):
        assert (root / GUESS_ID / name).read_bytes() == (reference / GUESS_ID / name).read_bytes()


def test_running_process_sees_new_calibrations(tmp_path, monkeypatch, replicas):
    """No import-time path, no stale cache: the default root is read at each call."""
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path / "first"))
    with pytest.raises(MissingArchiveError, match="no aca-dark archive in .*first"):
        dark_cal.get_dark_cal_dirs()
    monkeypatch.setenv("MICA_ARCHIVE", str(tmp_path / "archive"))
    with pytest.raises(MissingArchiveError, match="no aca-dark archive in .*archive"):
        dark_cal.get_dark_cal_props("1999:223")
    update_aca_dark(*DAYS[GUESS_ID], source=f"dir:{replicas}")  # default data_root
    assert list(dark_cal.get_dark_cal_dirs()) == [GUESS_ID]
    assert dark_cal.get_dark_cal_props("1999:230")["id"] == GUESS_ID
    assert (tmp_path / "archive" / "aca_dark" / GUESS_ID / "image.fits").exists()


def test_aacccdpt_fallback(tmp_path, replicas):
    """Without header-3 data, a quadratic through L0 TEMPCCD (here slot 0, a fid light)."""
    plan = sim.dark_cal_plan(HDR3_ID)
    upstream = tmp_path / "upstream"
    for p in plan_l0_files(plan.tstart - 3000, plan.tstop + 3000):
        if p.slot == 0:
            write_l0_file(p, upstream)
    l0 = _l0_archive(sorted(upstream.iterdir()), tmp_path / "aca0")
    root = tmp_path / "aca_dark"
    report = update_aca_dark(*DAYS[HDR3_ID], f"dir:{replicas}", root)  # l0: sibling aca0
    assert list(report.done) == [HDR3_ID], report.summary()
    props = dark_cal.get_dark_cal_props(HDR3_ID, data_root=root)
    assert {r["ccd_temp_source"] for r in props["replicas"]} == {"AACCCDPT"}
    assert props["ccd_temp"] == pytest.approx(-15.0, abs=0.2)
    assert l0 == root.parent / "aca0"


def test_no_temperature_refused_with_cli(tmp_path, replicas):
    """No L0 data: the calibration is refused naming it, the replica and what to do."""
    root = tmp_path / "aca_dark"
    common = ["--quiet", "--source", f"dir:{replicas}", "--data-root", str(root)]
    common += ["--l0-root", str(tmp_path / "empty-aca0")]
    result = CliRunner().invoke(
        main, ["update", "aca-dark", "--start", "2007:006", "--stop", "2007:007", *common]
    )
    assert result.exit_code == 1
    assert "dark calibration 2007006 refused: replica 1 (2007:006:01:56:46)" in result.output
    assert "cannot determine the CCD temperature" in result.output
    assert "update aca-l0 over 2007:006:01:46:46 .. 2007:006:04:43:12 first" in result.output
    _nothing_written(root)
    ok = CliRunner().invoke(
        main, ["update", "aca-dark", "--start", "1999:223", "--stop", "1999:224", *common]
    )
    assert ok.exit_code == 0 and "1 dark calibration archived" in ok.output


def test_missing_replica_refused(tmp_path, replicas):
    src = _subset(replicas, tmp_path / "src")
    (src / "acadark1999223_r3.fits.gz").unlink()
    root = tmp_path / "aca_dark"
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{src}", root)
    assert list(report.failed.values()) == [
        "dark calibration 1999223 refused: replica 3 of 5 missing (have 1, 2, 4, 5)"
    ]
    _nothing_written(root)


def test_replica_with_two_different_copies_refused(tmp_path, replicas):
    """A dir: folder with one replica name twice, different bytes: the calibration is
    refused naming both copies (not the whole update stopped)."""
    src = _subset(replicas, tmp_path / "src")
    name = "acadark1999223_r2.fits.gz"
    (src / "copy").mkdir()
    raw = gzip.decompress((src / name).read_bytes())
    (src / "copy" / name).write_bytes(gzip.compress(raw + b"\0", mtime=0))
    root = tmp_path / "aca_dark"
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{src}", root)
    (message,) = report.failed.values()
    assert "dark calibration 1999223 refused" in message, message
    assert str(src / name) in message and str(src / "copy" / name) in message, message
    _nothing_written(root)


def test_replicas_of_the_other_kind_refused(tmp_path, replicas):
    """A real dark archive refuses simulated replicas, naming the replica (a dir: source is
    judged by its files); a new archive judged by its files takes the first kind it builds."""
    src = _subset(replicas, tmp_path / "src")
    root = tmp_path / "aca_dark"
    write_provenance(root, {"kind": "real", "source": f"dir:{src}"})
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{src}", root)
    (message,) = report.failed.values()
    assert "acadark1999223_r1.fits.gz" in message and "is a simulated (mica.sim) file" in message
    _nothing_written(root)
    fresh = tmp_path / "fresh" / "aca_dark"
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{src}", fresh)
    assert list(report.done) == [GUESS_ID] and read_provenance(fresh)["kind"] == "simulated"


def _corrupt_gzip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _corrupt_data(path: Path) -> None:
    """Valid gzip, valid FITS, one pixel changed: only DATASUM can tell."""
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[2880 * 3 + 1001] ^= 0x10
    path.write_bytes(gzip.compress(bytes(raw), compresslevel=1))


def _truncate(path: Path) -> None:
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) - 1000], compresslevel=1))


def _wrong_shape(path: Path) -> None:
    with fits.open(path) as hdus:
        header = hdus[0].header.copy()
        data = hdus[0].data[:512].copy()
    hdu = fits.PrimaryHDU(data, header)
    hdu.writeto(path.with_suffix(""), overwrite=True, checksum=True)
    path.write_bytes(gzip.compress(path.with_suffix("").read_bytes(), compresslevel=1))
    path.with_suffix("").unlink()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_corrupt_gzip, "corrupt or truncated gzip data"),
        (_corrupt_data, "DATASUM verification failed in HDU 0 (data corrupted)"),
        (_truncate, "truncated FITS file (4198040 bytes, not a multiple of 2880)"),
        (_wrong_shape, "primary HDU is not a 1024x1024 float32 image"),
    ],
)
def test_bad_replica_refused(tmp_path, replicas, damage, problem):
    src = _subset(replicas, tmp_path / "src")
    damage(src / "acadark1999223_r2.fits.gz")
    root = tmp_path / "aca_dark"
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{src}", root)
    assert len(report.failed) == 1 and not report.done
    message = report.failed[GUESS_ID]
    assert message.startswith("dark calibration 1999223 refused: replica file ")
    assert "acadark1999223_r2.fits.gz" in message and problem in message
    _nothing_written(root)
    # Once the upstream delivers a good file, the calibration is archived.
    shutil.copyfile(replicas / "acadark1999223_r2.fits.gz", src / "acadark1999223_r2.fits.gz")
    assert list(update_aca_dark(*DAYS[GUESS_ID], f"dir:{src}", root).done) == [GUESS_ID]


def test_check_and_repair(tmp_path, replicas, reference):
    root = tmp_path / "aca_dark"
    shutil.copytree(reference, root)
    assert check_dark_archive(root) == ([], [])
    (root / GUESS_ID / "properties.json").unlink()
    (root / ".2007006.tmp-12345").mkdir()
    problems, repairs = check_dark_archive(root)
    assert problems == [
        "interrupted update left .2007006.tmp-12345",
        "calibration 1999223: no properties.json",
    ]
    assert not repairs
    # A corrupted map (bit rot) is found by its DATASUM.
    image = root / HDR3_ID / "image.fits"
    raw = bytearray(image.read_bytes())
    raw[-5000] ^= 0x01
    image.write_bytes(bytes(raw))
    problems, repairs = check_dark_archive(root, repair=True)
    assert "calibration 2007006: DATASUM verification failed in HDU 0 (data corrupted)" in problems
    assert len(repairs) == 3 and "rebuilds it" in repairs[-1]
    assert list(dark_cal.get_dark_cal_dirs(data_root=root)) == []
    assert check_dark_archive(root) == ([], [])
    assert (root / "rejected" / "1999223-1.reason").read_text() == "no properties.json\n"
    report = update_aca_dark("1999:223", "2007:007", f"dir:{replicas}", root)
    assert list(report.done) == [GUESS_ID]  # 2007006 needs L0: refused here
    assert len(report.failed) == 1


def test_calibration_files_checked_against_their_digests(tmp_path, replicas, reference):
    """Each folder is installed with the digests of its files: a changed byte of
    ``properties.json``, which has no checksum of its own, or of the image's data, is
    refused by the readers (naming the file and the repair) and found by the check;
    ``--repair`` moves the folder aside and the update named rebuilds it."""
    root = tmp_path / "aca_dark"
    shutil.copytree(reference, root)
    record = json.loads((root / GUESS_ID / FOLDER_DIGESTS).read_text())
    assert sorted(record["files"]) == ["image.fits", "properties.json"]
    image = root / GUESS_ID / "image.fits"
    before = dark_cal.get_dark_cal_image(GUESS_ID, data_root=root)
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of a pixel, in place, after a first read
    image.write_bytes(bytes(data))
    for read in (
        lambda: dark_cal.get_dark_cal_image(GUESS_ID, data_root=root),
        lambda: dark_cal.read_dark_image(image),
        lambda: dark_cal.get_dark_cal_props(GUESS_ID, include_image=True, data_root=root),
    ):
        with pytest.raises(DamagedFileError) as err:
            read()
        assert err.value.path == image and "`mica check --repair`" in str(err.value)
        assert "`mica update aca-dark --start 1999:223 --stop 1999:224`" in str(err.value)
    os.truncate(image, 3_000_000)  # its header's checks fail first: the digest names it
    with pytest.raises(DamagedFileError, match="image.fits is damaged: it does not match"):
        dark_cal.get_dark_cal_image(GUESS_ID, data_root=root)
    data[len(data) // 2] ^= 0x01
    image.write_bytes(bytes(data))
    assert np.array_equal(dark_cal.get_dark_cal_image(GUESS_ID, data_root=root), before)
    props = root / GUESS_ID / "properties.json"
    text = props.read_text()
    assert text.startswith('{\n    "ccd_temp": -10.0,')  # the calibration's own
    props.write_text(text.replace('"ccd_temp": -10.0', '"ccd_temp": -19.0', 1))  # valid JSON
    with pytest.raises(DamagedFileError, match="properties.json is damaged: it does not match"):
        dark_cal.get_dark_cal_props(GUESS_ID, data_root=root)
    problem = f"properties.json does not match its digest in {FOLDER_DIGESTS} (a damaged byte)"
    assert check_dark_archive(root) == ([f"calibration {GUESS_ID}: {problem}"], [])
    problems, repairs = check_dark_archive(root, repair=True)
    assert repairs == [
        f"moved broken calibration {GUESS_ID} to rejected/{GUESS_ID}-1 "
        "(`mica update aca-dark --start 1999:223 --stop 1999:224` rebuilds it)"
    ]
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{replicas}", root)
    assert list(report.done) == [GUESS_ID] and check_dark_archive(root) == ([], [])
    assert props.read_bytes() == (reference / GUESS_ID / "properties.json").read_bytes()

    # digests.json lost: the image says the folder was written with one (not the original's)
    (root / GUESS_ID / FOLDER_DIGESTS).unlink()
    with pytest.raises(DamagedFileError, match=f"has lost its {FOLDER_DIGESTS}"):
        dark_cal.get_dark_cal_props(GUESS_ID, data_root=root)
    lost = f"has lost its {FOLDER_DIGESTS} (its image.fits was written with one)"
    assert check_dark_archive(root) == ([f"calibration {GUESS_ID}: {lost}"], [])
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{replicas}", root)  # not whole: rebuilt
    assert list(report.done) == [GUESS_ID] and check_dark_archive(root) == ([], [])
    assert dark_cal.get_dark_cal_props(GUESS_ID, data_root=root)["ccd_temp"] == -10.0


def test_broken_calibration_rebuilt_by_update(tmp_path, replicas, reference):
    root = tmp_path / "aca_dark"
    shutil.copytree(reference, root)
    (root / GUESS_ID / "image.fits").write_bytes(b"SIMPLE  =")
    report = update_aca_dark(*DAYS[GUESS_ID], f"dir:{replicas}", root)
    assert report.done == {GUESS_ID: "rebuilt broken calibration"}
    assert (root / GUESS_ID / "image.fits").read_bytes() == (
        reference / GUESS_ID / "image.fits"
    ).read_bytes()


def test_busy_and_bad_sources(tmp_path, replicas):
    root = tmp_path / "aca_dark"
    with UpdateLock(root), pytest.raises(ArchiveBusy, match="another update"):
        update_aca_dark(*DAYS[GUESS_ID], f"dir:{replicas}", root)
    with pytest.raises(SourceError, match="does not exist"):
        update_aca_dark(*DAYS[GUESS_ID], f"dir:{tmp_path / 'nowhere'}", root)
    with pytest.raises(ValueError, match="is empty: give a start time"):
        update_aca_dark(None, None, f"dir:{replicas}", root)
    with pytest.raises(ValueError, match="is not after start"):
        update_aca_dark("2007:007", "2007:006", f"dir:{replicas}", root)


def test_combine_rejects_cosmic_rays():
    rng = np.random.default_rng(5)
    truth = rng.lognormal(3.0, 1.5, (64, 64)).astype(np.float32)
    integ = 8.0
    sigma = np.sqrt(truth * integ + 400.0) / integ
    stack = truth + sigma * rng.standard_normal((5, 64, 64)).astype(np.float32)
    hits = [(0, 3, 4), (1, 3, 4), (2, 10, 10), (4, 63, 0)]  # two replicas hit one pixel
    for k, i, j in hits:
        stack[k, i, j] += 300.0
    out, n_cosmic = combine_replicas(stack, integ)
    assert n_cosmic.tolist() == [1, 1, 1, 0, 1]
    assert np.all(np.abs(out - truth) < 6 * sigma)


# ---------------------------------------------------------------------------------------
# kill -9 in the middle of an update, then a re-run
# The crash is injected from here: the update runs in a subprocess whose install step (or
# rename) kills the process (SIGKILL) at the chosen point; production code has no hook.
CRASH_SCRIPT = """
import os, signal, sys
from pathlib import Path

import mica.engine.atomic as atomic

point, args = sys.argv[1], sys.argv[2:]
if point == "image-written":  # the map is written in the temporary folder, nothing else
    write = atomic.write_file_durable

    def write_then_die(path, data):
        write(path, data)
        if Path(path).name == "image.fits":
            os.kill(os.getpid(), signal.SIGKILL)

    atomic.write_file_durable = write_then_die
elif point == "tmp-complete":  # the temporary folder is whole, not yet renamed
    rename = os.rename

    def die_before_rename(src, dst, *a, **kw):
        if ".tmp-" in os.fspath(src):
            os.kill(os.getpid(), signal.SIGKILL)
        return rename(src, dst, *a, **kw)

    os.rename = die_before_rename
from mica.cli import main

main(args)
"""


def _update_cmd(source: str, root: Path, crash_at: str, script: Path) -> list[str]:
    start, stop = DAYS[GUESS_ID]
    script.write_text(CRASH_SCRIPT)
    return [
        sys.executable, str(script), crash_at, "update", "aca-dark", "--quiet",
        "--start", start, "--stop", stop, "--source", source, "--data-root", str(root),
    ]  # fmt: skip


@pytest.mark.parametrize("crash_at", ["staging", "image-written", "tmp-complete"])
def test_kill_mid_update_then_rerun(tmp_path, replicas, reference, crash_at):
    root = tmp_path / "aca_dark"
    script = tmp_path / "crash.py"
    if crash_at == "staging":
        # The sim source writes the replicas one by one (~1 s): kill while it does.
        proc = subprocess.Popen(_update_cmd("sim", root, crash_at, script))
        deadline = time.monotonic() + 60
        staging = root / ".staging"
        while not (staging.is_dir() and any(staging.rglob("*.fits.gz"))):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    else:
        proc = subprocess.Popen(_update_cmd(f"dir:{replicas}", root, crash_at, script))
    assert proc.wait(timeout=120) == -signal.SIGKILL

    # Whatever the kill left, readers see no calibration, and the check names the leftover.
    assert not dark_cal.get_dark_cal_dirs(data_root=root)
    problems, _ = check_dark_archive(root)
    leftovers = [p.name for p in root.iterdir() if p.name not in ("update.lock", "archive.json")]
    assert len(problems) == len(leftovers) >= 1
    assert all(p.startswith("interrupted update left .") for p in problems)

    rerun = update_aca_dark(*DAYS[GUESS_ID], f"dir:{replicas}", root)
    assert list(rerun.done) == [GUESS_ID] and rerun.recovered
    assert check_dark_archive(root) == ([], [])
    assert sorted(p.name for p in root.iterdir()) == [GUESS_ID, "archive.json", "update.lock"]
    for name in ("image.fits", "properties.json"):
        assert (root / GUESS_ID / name).read_bytes() == (reference / GUESS_ID / name).read_bytes()


def test_with_inputs_on_empty_archive(tmp_path):
    """`--with-inputs`: the L0 windows the temperatures need, then the calibrations."""
    archive = tmp_path / "archive"
    args = ["--archive", str(archive), "update", "aca-dark", "--quiet", "--source", "sim"]
    args += ["--start", "2000:001", "--stop", "2000:200"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1  # without inputs: refused, saying what to update first
    assert refused.output.count("update aca-l0 over") == 2
    result = CliRunner().invoke(main, [*args, "--with-inputs"])
    assert result.exit_code == 0, result.output
    assert "aca-dark: 2 dark calibrations archived" in result.output
    assert "note: inputs of 2000043: aca-l0" in result.output
    root = archive / "aca_dark"
    assert list(dark_cal.get_dark_cal_dirs(data_root=root)) == ["2000043", "2000131"]
    m = default_mission()
    for dark_id in ("2000043", "2000131"):
        props = dark_cal.get_dark_cal_props(dark_id, data_root=root)
        plan = sim.dark_cal_plan(dark_id)
        for rec, (t0, t1) in zip(props["replicas"], plan.replicas, strict=True):
            assert rec["ccd_temp_source"] == "HDR3"
            truth = float(np.ravel(m.ccd_temp_degc(0.5 * (t0 + t1)))[0])
            assert rec["ccd_temp"] == pytest.approx(truth, abs=0.05)
    # Only files overlapping the windows around the calibrations were archived (~3 h each).
    plans = [sim.dark_cal_plan(i) for i in ("2000043", "2000131")]
    with ArchiveIndex(L0, archive / "aca0", readonly=True) as index:
        rows = index.query("1")
    assert rows and all(
        any(r["tstop"] >= p.tstart - 600 and r["tstart"] <= p.tstop + 600 for p in plans)
        for r in rows
    )
    again = CliRunner().invoke(main, [*args, "--with-inputs"])
    assert again.exit_code == 0 and "0 dark calibrations archived, 2 already" in again.output
