"""Hostile and malformed files are refused by validation, quarantined, and change nothing.

Every L0 variant is built from a real 2003 file and from a simulated file (a column
definition, values or header keyword changed and written with valid checksums, or bytes of
the header flipped on disk), offered through the real update path (`update_archive` with a
``dir:`` source) to an archive built from the other files, and must be refused with the
file named and its reason kept in ``rejected/``, leaving the archive's index rows and files
as they were and `check_archive` clean. Obspar variants go through `update_obsid_archive`.
"""

from __future__ import annotations

import gzip
import hashlib
import multiprocessing
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mica.archive import aca_l0, asp_l1, obspar
from mica.engine.describe import describe_file
from mica.engine.fitscheck import ones_sum, open_checked
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.ingest import ingest_files
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.product import RejectedFile
from mica.engine.time_update import update_archive
from mica.engine.validate import MISSION_START, TIME_AFTER_TSTOP, TIME_BEFORE_TSTART
from mica.products.aca_l0 import FILE_COLUMNS, FILE_TFORMS, L0, UNSIGNED_COLUMNS
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import asp_l1 as sim_asp_l1
from mica.sim import obspar as sim_obspar
from mica.sim.aca_l0 import plan_l0_files, write_l0_file
from mica.sim.mission import default_mission
from mica.time import to_secs

REAL_TARGET = "acaf176267383N001_0_img0.fits.gz"  # 8x8, slot 0, 729 rows
SIM_WINDOW = ("2012:001:00:00:00", "2012:001:01:00:00")  # 16 files: 8x8 slots 0-2, 6x6 3-7

Edit = Callable[[fits.HDUList], None]


@dataclass
class Case:
    """An archive of every file but ``target`` (copied per test) and the original target."""

    kind: str
    root: Path
    target: Path
    incoming: Path

    @property
    def name(self) -> str:
        return self.target.name


def _build_archive(files: list[Path], where: Path) -> Path:
    folder = where / "upstream"
    folder.mkdir(parents=True)
    for path in files:  # copies: a dir: source does not follow links out of its folder
        shutil.copyfile(path, folder / path.name)
    times = [L0.name_time(p.name) for p in files]
    root = where / "aca0"
    report = update_archive(L0, f"dir:{folder}", min(times) - 10, max(times) + 10, data_root=root)
    assert len(report.ingested) == len(files) and not report.rejected, report.summary()
    return root


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """The simulated upstream's files of one hour (written through the simulator)."""
    dest = tmp_path_factory.mktemp("sim-upstream")
    for plan in plan_l0_files(*SIM_WINDOW):
        write_l0_file(plan, dest)
    return dest


@pytest.fixture(scope="module")
def bases(tmp_path_factory, real_l0_dir, sim_dir) -> dict[str, tuple[Path, Path]]:
    """Per kind: (archive of all files but the target, the target's original file)."""
    out = {}
    for kind, folder in (("real", real_l0_dir), ("sim", sim_dir)):
        files = sorted(folder.glob("acaf*.fits.gz"))
        target = folder / REAL_TARGET if kind == "real" else files[0]
        assert target.exists() and target.name.endswith("_0_img0.fits.gz")
        others = [p for p in files if p != target]
        out[kind] = (_build_archive(others, tmp_path_factory.mktemp(f"base-{kind}")), target)
    return out


@pytest.fixture(params=["real", "sim"])
def case(request, bases, tmp_path) -> Case:
    base, target = bases[request.param]
    root = tmp_path / "aca0"
    shutil.copytree(base, root, symlinks=True)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    return Case(request.param, root, target, incoming)


def snapshot(root: Path) -> dict[str, str]:
    """Every archived and store file by content hash, and the index rows."""
    out = {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.parts[len(root.parts)] not in ("rejected", "staging")
        and p.suffix in (".gz", ".h5")
    }
    with ArchiveIndex(L0, root) as index:
        out["rows"] = repr(sorted(tuple(sorted(r.items())) for r in index.query()))
    return out


def write_variant(src: Path, dest: Path, edit: Edit | None = None) -> Path:
    """Copy a FITS file with ``edit`` applied to its HDUs, written with fresh checksums."""
    with fits.open(src) as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    if edit:
        edit(hdus)
    raw = dest.with_suffix("")
    hdus.writeto(raw, checksum=True, overwrite=True)
    dest.write_bytes(gzip.compress(raw.read_bytes(), mtime=0))
    raw.unlink()
    return dest


def replace_column(name: str, fmt: str, values=None, **kwargs) -> Edit:
    """An edit giving column ``name`` another definition (and values, default the same)."""

    def edit(hdus: fits.HDUList) -> None:
        table = hdus[1]
        cols = []
        for col in table.columns:
            if col.name == name:
                data = table.data[name] if values is None else values(table.data)
                col = fits.Column(name=name, format=fmt, array=data, **kwargs)
            cols.append(col)
        header = table.header.copy()
        for key in [k for k in header if k[:5] in ("TFORM", "TTYPE", "TDIM", "TZERO", "TSCAL")]:
            del header[key]
        hdus[1] = fits.BinTableHDU.from_columns(cols, header=header, name="ACA_IMG0")

    return edit


def set_values(name: str, change: Callable[[np.ndarray], None]) -> Edit:
    def edit(hdus: fits.HDUList) -> None:
        change(hdus[1].data[name])

    return edit


def set_header(**cards) -> Edit:
    def edit(hdus: fits.HDUList) -> None:
        for key, value in cards.items():
            hdus[1].header[key] = value

    return edit


def offer(case: Case, path: Path, phrase: str) -> None:
    """Offer ``path`` through the update path; assert it is refused and nothing changed."""
    before = snapshot(case.root)
    t0 = L0.name_time(case.name)
    report = update_archive(L0, f"dir:{case.incoming}", t0 - 10, t0 + 10, data_root=case.root)
    assert report.ingested == [] and len(report.rejected) == 1, report.summary()
    err = report.rejected[0]
    assert err.filename == path.name and path.name in str(err)
    assert phrase in err.problem, str(err)
    assert (case.root / "rejected" / path.name).exists()
    assert phrase in (case.root / "rejected" / (path.name + ".reason")).read_text()
    assert snapshot(case.root) == before
    check = check_archive(L0, data_root=case.root)
    assert check.ok, check.summary()


def test_untouched_target_is_accepted(case):
    """The control: the target as delivered is archived by the same path."""
    shutil.copy(case.target, case.incoming / case.name)
    t0 = L0.name_time(case.name)
    report = update_archive(L0, f"dir:{case.incoming}", t0 - 10, t0 + 10, data_root=case.root)
    assert report.ingested == [case.name] and not report.rejected, report.summary()
    assert check_archive(L0, data_root=case.root).ok
    # and a rewrite through astropy (the base of every variant below) is accepted too
    again = case.incoming / "again"
    again.mkdir()
    name = case.name.replace("N001", "N002")
    write_variant(case.target, again / name, set_header(REVISION=2))
    report = update_archive(L0, f"dir:{again}", t0 - 10, t0 + 10, data_root=case.root)
    assert report.ingested == [name] and report.replaced == [case.name], report.summary()


# --- column definitions (defects 1 and 6) -----------------------------------------------------
COLUMN_CASES = {
    # 1: a 2-D TIME column with valid checksums
    "time-2d": (
        replace_column("TIME", "2D", lambda d: np.stack([d["TIME"], d["TIME"]], axis=1)),
        "TIME has TFORM 2D",
    ),
    "time-text": (
        replace_column("TIME", "20A", lambda d: np.char.mod("%.6f", d["TIME"])),
        "TIME has TFORM 20A",
    ),
    "time-scaled": (
        replace_column("TIME", "1D", bscale=2.0, bzero=0.0),
        "TIME has TSCAL 2.0",
    ),
    # 6: wrong types accepted and converted
    "imgrow0-32bit": (
        replace_column("IMGROW0", "1J", lambda d: np.full(len(d), 40000, np.int32)),
        "IMGROW0 has TFORM 1J",
    ),
    "imgscale-32bit": (
        replace_column("IMGSCALE", "1J", lambda d: np.full(len(d), 70001, np.int32)),
        "IMGSCALE has TFORM 1J",
    ),
    "quality-64bit": (
        replace_column("QUALITY", "1K", lambda d: np.full(len(d), 2**40, np.int64)),
        "QUALITY has TFORM 1K",
    ),
    "bgdrms-signed": (
        replace_column("BGDRMS", "1I", lambda d: np.full(len(d), -1, np.int16)),
        "BGDRMS has no TZERO",
    ),
    "imgraw-tdim": (
        replace_column("IMGRAW", "64E", dim="(16,4)"),
        "IMGRAW has TDIM (16,4)",
    ),
    "tdim-on-scalar": (replace_column("MJF", "1J", dim="(1)"), "MJF has TDIM (1)"),
}


def add_column(name: str, fmt: str, value) -> Edit:
    def edit(hdus: fits.HDUList) -> None:
        n = len(hdus[1].data)
        col = fits.Column(name=name, format=fmt, array=np.full(n, value))
        cols = hdus[1].columns + fits.ColDefs([col])
        hdus[1] = fits.BinTableHDU.from_columns(cols, header=hdus[1].header, name="ACA_IMG0")

    return edit


COLUMN_CASES["pixtlm-int"] = (add_column("PIXTLM", "1J", 7), "PIXTLM has TFORM 1J")
COLUMN_CASES["bgdtyp-long"] = (add_column("BGDTYP", "8A", "DYNBDYNB"), "BGDTYP has TFORM 8A")


def test_post_2023_string_columns_accepted(case):
    """PIXTLM/BGDTYP as newer processing writes them (4A) pass and are read back."""
    edit = add_column("PIXTLM", "4A", "DYNB")
    write_variant(case.target, case.incoming / case.name, edit)
    t0 = L0.name_time(case.name)
    report = update_archive(L0, f"dir:{case.incoming}", t0 - 10, t0 + 10, data_root=case.root)
    assert report.ingested == [case.name] and not report.rejected, report.summary()
    with fits.open(case.target) as hdus:
        start, stop = hdus[1].header["TSTART"], hdus[1].header["TSTOP"]
    rows = aca_l0.get_slot_data(start, stop, slot=0, data_root=case.root, use_store=False)
    mine = rows["PIXTLM"][rows["FILENAME"] == case.name]
    assert len(mine) and set(mine) == {"DYNB"}


@pytest.mark.parametrize("variant", sorted(COLUMN_CASES))
def test_wrong_column_definition_refused(case, variant):
    edit, phrase = COLUMN_CASES[variant]
    path = write_variant(case.target, case.incoming / case.name, edit)
    offer(case, path, phrase)


def test_formats_match_real_and_simulated_files(real_l0_dir, sim_dir):
    """The definitions validation enforces are those of every real and simulated file."""
    files = sorted(real_l0_dir.glob("*.fits.gz")) + sorted(sim_dir.glob("*.fits.gz"))
    sizes = set()
    for path in files:
        with fits.open(path) as hdus:
            cols = hdus[1].columns
            size = int(round(np.sqrt(cols["IMGRAW"].format.repeat)))
            sizes.add(size)
            assert cols.names == FILE_COLUMNS[size], path.name
            for col in cols:
                want = f"{size * size}E" if col.name == "IMGRAW" else FILE_TFORMS[col.name]
                assert col.format == want, (path.name, col.name)
                unsigned = col.name in UNSIGNED_COLUMNS
                assert (col.bzero, col.bscale) == ((32768, 1) if unsigned else (None, None))
                assert col.dim == (f"({size},{size})" if col.name == "IMGRAW" else None)
    assert sizes == {4, 6, 8}


# --- TIME values and the file's span (defects 2, 3, 7) ---------------------------------------
def _nan_rows(t: np.ndarray) -> None:
    t[5:10] = np.nan


def _late_rows(t: np.ndarray) -> None:
    t[-3:] += 1000.0  # still sorted, but after TSTOP


def _early_rows(t: np.ndarray) -> None:
    t[:3] -= 1000.0


def _swapped_rows(t: np.ndarray) -> None:
    t[[3, 4]] = t[[4, 3]]


TIME_CASES = {
    "nan-time": (set_values("TIME", _nan_rows), "TIME is not finite in 5 rows"),
    "inf-time": (set_values("TIME", lambda t: t.__setitem__(0, np.inf)), "not finite in 1 row"),
    "rows-after-tstop": (set_values("TIME", _late_rows), "after TSTOP"),
    "rows-before-tstart": (set_values("TIME", _early_rows), "before TSTART"),
    "unsorted-time": (set_values("TIME", _swapped_rows), "TIME decreases at row 4"),
    "tstop-1e300": (set_header(TSTOP=1e300), "TSTOP 1e+300 is not a time of the mission"),
    "tstart-before-launch": (set_header(TSTART=1000.0), "TSTART 1000.0 is not a time"),
    "tstop-11-days": (
        lambda h: h[1].header.__setitem__("TSTOP", h[1].header["TSTART"] + 11 * 86400),
        "longer than 10 days",
    ),
    "startmjf-huge": (set_header(STARTMJF=1e300), "STARTMJF 1e+300 is not an integer"),
    "stopmnf-range": (set_header(STOPMNF=-1), "STOPMNF -1 is outside 0..142"),
    "stopmjf-float": (set_header(STOPMJF=47649.5), "STOPMJF 47649.5 is not an integer"),
}


@pytest.mark.parametrize("variant", sorted(TIME_CASES))
def test_bad_times_refused(case, variant):
    edit, phrase = TIME_CASES[variant]
    path = write_variant(case.target, case.incoming / case.name, edit)
    offer(case, path, phrase)


def test_nan_time_does_not_hide_the_slot(case):
    """Defect 2: after the refusal the slot reads the same through the store and the files."""
    path = write_variant(case.target, case.incoming / case.name, TIME_CASES["nan-time"][0])
    offer(case, path, "not finite")
    with fits.open(case.target) as hdus:
        t0, t1 = hdus[1].header["TSTART"] - 3600, hdus[1].header["TSTOP"] + 3600
    stored = aca_l0.get_slot_data(t0, t1, slot=0, data_root=case.root)
    scanned = aca_l0.get_slot_data(t0, t1, slot=0, data_root=case.root, use_store=False)
    assert len(stored) == len(scanned) > 0
    assert np.isfinite(stored["TIME"]).all()


def test_huge_tstop_does_not_block_later_files(tmp_path, real_l0_dir, sim_dir):
    """Defect 3: a TSTOP of 1E300 is refused, so the slot's later files are archived."""
    for kind, folder in (("real", real_l0_dir), ("sim", sim_dir)):
        files = sorted(folder.glob("acaf*_0_img0.fits.gz"))
        assert len(files) >= 2
        where = tmp_path / kind
        incoming = where / "incoming"
        incoming.mkdir(parents=True)
        write_variant(files[0], incoming / files[0].name, set_header(TSTOP=1e300))
        for path in files[1:]:
            shutil.copy(path, incoming / path.name)
        root = where / "aca0"
        t0, t1 = L0.name_time(files[0].name), L0.name_time(files[-1].name)
        report = update_archive(L0, f"dir:{incoming}", t0 - 10, t1 + 10, data_root=root)
        assert [e.filename for e in report.rejected] == [files[0].name], report.summary()
        assert report.ingested == [p.name for p in files[1:]], report.summary()
        assert check_archive(L0, data_root=root).ok


def test_time_tolerance_covers_every_real_and_simulated_file(real_l0_dir, sim_dir):
    """The margins around [TSTART, TSTOP] are wider than what real files need, not much more.

    Measured: the first TIME is 1.873 s before TSTART (TSTART - 1.025 - INTEG/2 with
    INTEG 1.696 s) and the last TIME 2.9-6.0 s before TSTOP in every real and simulated file.
    """
    lo, hi = [], []
    for path in sorted(real_l0_dir.glob("*.fits.gz")) + sorted(sim_dir.glob("*.fits.gz")):
        with fits.open(path) as hdus:
            t, h = hdus[1].data["TIME"], hdus[1].header
            lo.append(h["TSTART"] - t.min())
            hi.append(t.max() - h["TSTOP"])
    assert 1.8 < max(lo) < 1.9 and max(lo) < TIME_BEFORE_TSTART <= 10.0
    assert max(hi) < -2.8 and 0.0 <= TIME_AFTER_TSTOP <= 1.0


def test_mission_start():
    assert MISSION_START == pytest.approx(to_secs("1999:204:00:00:00"), abs=1e-3)


# --- names and slots (defect 13) ------------------------------------------------------------
def test_imgnum1_of_another_slot_refused(case):
    path = write_variant(
        case.target, case.incoming / case.name, set_values("IMGNUM1", lambda v: v.fill(5))
    )
    offer(case, path, "IMGNUM1 5 in 729 rows" if case.kind == "real" else "IMGNUM1 5 in")


def test_imgnum1_partly_wrong_refused(case):
    path = write_variant(
        case.target, case.incoming / case.name, set_values("IMGNUM1", lambda v: v.__setitem__(7, 6))
    )
    offer(case, path, "the name's slot 0")


@pytest.mark.parametrize("bad", ["\x00", "\n", "\x1b[2J", "\x7f"])
def test_control_characters_in_name_refused(case, bad):
    """Names listed by an upstream reach ingest as (name, path) pairs; a dir never lists them."""
    path = case.incoming / "delivered.fits.gz"
    shutil.copy(case.target, path)
    before = snapshot(case.root)
    name = case.name.replace("_img0", bad + "_img0")
    report = ingest_files(L0, [(name, path)], data_root=case.root)
    assert report.ingested == [] and len(report.rejected) == 1
    err = report.rejected[0]
    assert "control characters" in err.problem
    assert all(c.isprintable() for c in err.filename) and err.filename in str(err)
    kept = case.root / "rejected" / err.filename
    assert kept.exists() and (kept.parent / (kept.name + ".reason")).exists()
    assert snapshot(case.root) == before
    assert check_archive(L0, data_root=case.root).ok


# --- checksums over the bytes on disk -------------------------------------------------------
def _flip(raw: bytearray, hdu: int, where: Callable[[bytes, int], int], value: int) -> None:
    start = 0
    for _ in range(hdu):
        start = raw.index(b"XTENSION", start + 1)
    raw[where(bytes(raw), start)] = value


def _end_card(raw: bytes, start: int) -> int:
    pos = start
    while raw[pos : pos + 8] != b"END     ":
        pos += 80
    return pos


FLIPS = {
    # each passed astropy's verify_checksum (it sums astropy's re-serialised header)
    "keyword-case-hdu1": (1, lambda r, s: r.index(b"TLMVER  =", s) + 1, ord("l")),
    "after-end-hdu1": (1, lambda r, s: _end_card(r, s) + 200, ord("x")),
    "keyword-case-hdu0": (0, lambda r, s: r.index(b"ORIGIN  =", s) + 2, ord("i")),
    "after-end-hdu0": (0, lambda r, s: _end_card(r, s) + 100, ord("y")),
    # a flipped CHECKSUM keyword name hides the card: the header went unchecked
    "checksum-name": (1, lambda r, s: r.index(b"CHECKSUM=", s) + 7, ord("X")),
}


@pytest.mark.parametrize("flip", sorted(FLIPS))
def test_header_byte_flip_refused(case, flip):
    hdu, where, value = FLIPS[flip]
    raw = bytearray(gzip.decompress(case.target.read_bytes()))
    _flip(raw, hdu, where, value)
    path = case.incoming / case.name
    path.write_bytes(gzip.compress(bytes(raw), mtime=0))
    phrase = (
        "no CHECKSUM" if flip == "checksum-name" else f"CHECKSUM verification failed in HDU {hdu}"
    )
    offer(case, path, phrase)


def test_checksum_of_real_files_on_disk(real_l0_dir, sim_dir):
    """Every HDU of the real and simulated files sums to -0 over its bytes, data to DATASUM."""
    for path in sorted(real_l0_dir.glob("*.fits.gz"))[:6] + sorted(sim_dir.glob("*.fits.gz"))[:6]:
        raw = gzip.decompress(path.read_bytes())
        hdus, checksum = open_checked(path, path.name, "ACA_IMG0")
        with hdus:
            assert checksum == hdus[1].header["CHECKSUM"]
        assert ones_sum(np.frombuffer(raw, ">u4")) == 0xFFFFFFFF  # each HDU -0, so all


def test_ones_sum_carries():
    words = np.array([0xFFFFFFFF, 0x00000002, 0x80000000, 0x80000000], dtype=">u4")
    # 0xFFFFFFFF + 2 = 0x1_00000001 -> 0x00000002; + 2**31 + 2**31 -> 0x1_00000002 -> 3
    assert ones_sum(words) == 3
    assert ones_sum(np.zeros(0, ">u4")) == 0


def test_reject_carries_file_name(tmp_path, real_l0_dir):
    """Validation alone (no ingest) raises RejectedFile naming the file."""
    path = write_variant(
        real_l0_dir / REAL_TARGET, tmp_path / REAL_TARGET, TIME_CASES["nan-time"][0]
    )
    with pytest.raises(RejectedFile, match=f"{REAL_TARGET}: TIME is not finite"):
        describe_file(L0, REAL_TARGET, path)


# --- obspar (defect 11) ---------------------------------------------------------------------
OBSID = 7000


def _obspar_mirror(root: Path, replace: dict[str, str]) -> Path:
    """A ``dir:`` mirror with obsid 7000 revision 1, parameter values replaced by name."""
    obs = default_mission().observation(OBSID)
    text = sim_obspar.obspar_text(
        obs, sim_obspar.Obi(0, obs.tstart, obs.tstop), 1, obs.tstop + 86400
    )
    lines = []
    for line in text.splitlines():
        fields = line.split(",")
        if fields[0] in replace:
            fields[3] = replace[fields[0]]
        lines.append(",".join(fields))
    folder = root / f"{OBSID:05d}"[:2] / f"{OBSID:05d}_v01"
    folder.mkdir(parents=True)
    path = folder / sim_obspar.obspar_name(OBSID, 0, 1)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    (folder.parent / f"{OBSID:05d}").symlink_to(folder.name)
    return path


OBSPAR_CASES = {
    "tstart-minus-inf": ({"tstart": "-inf"}, "tstart -inf is not a time of the mission"),
    "tstart-minus-1e300": ({"tstart": "-1e300"}, "tstart -1e+300 is not a time of the mission"),
    "tstop-inf": ({"tstop": "inf"}, "tstop inf is not a time of the mission"),
    "tstart-nan": ({"tstart": "nan"}, "tstart nan is not a time of the mission"),
    "tstart-before-launch": ({"tstart": "1000.0"}, "tstart 1000.0 is not a time of the mission"),
    "ra-nan": ({"ra_pnt": "nan"}, "parameter ra_pnt: nan is not a finite number"),
    "dither-inf": ({"dither_y_amp": "1e999"}, "parameter dither_y_amp: inf is not a finite"),
    "int-huge": ({"obspar_ver": "9" * 30}, "parameter obspar_ver: " + "9" * 30),
}


@pytest.mark.parametrize("variant", sorted(OBSPAR_CASES))
def test_bad_obspar_refused(tmp_path, variant):
    replace, phrase = OBSPAR_CASES[variant]
    mirror, root = tmp_path / "mirror", tmp_path / "obspar"
    path = _obspar_mirror(mirror, replace)
    report = update_obsid_archive(OBSPAR, f"dir:{mirror}", [OBSID], data_root=root)
    assert not report.ok and OBSID in report.failed, report.summary()
    assert [e.filename for e in report.ingest.rejected] == [path.name], report.summary()
    err = report.ingest.rejected[0]
    assert phrase in err.problem and path.name in str(err), str(err)
    assert (root / "rejected" / path.name).exists()
    assert phrase in (root / "rejected" / (path.name + ".reason")).read_text()
    assert obspar.get_obs_dirs(OBSID, data_root=root) is None
    with ArchiveIndex(OBSPAR, root) as index:
        assert index.query() == []
    assert check_archive(OBSPAR, data_root=root).ok


def test_good_obspar_accepted(tmp_path):
    """The control of the obspar variants: the unedited mirror is archived."""
    mirror, root = tmp_path / "mirror", tmp_path / "obspar"
    _obspar_mirror(mirror, {})
    report = update_obsid_archive(OBSPAR, f"dir:{mirror}", [OBSID], data_root=root)
    assert report.ok and OBSID in report.done, report.summary()
    assert obspar.get_obspar(OBSID, data_root=root)["obs_id"] == str(OBSID)


# --- aspect L1 ------------------------------------------------------------------------------
def _asp_time(change: Callable[[np.ndarray], None]) -> Edit:
    def edit(hdus: fits.HDUList) -> None:
        change(hdus[1].data["time"])

    return edit


def _asp_time_float32(hdus: fits.HDUList) -> None:
    cols = [
        fits.Column(name="time", format="1E", array=c.array) if c.name == "time" else c
        for c in hdus[1].columns
    ]
    hdus[1] = fits.BinTableHDU.from_columns(cols, header=hdus[1].header)


ASP_CASES = {
    "asol-nan-time": ("asol1", _asp_time(_nan_rows), "time is not finite in 5 rows"),
    "aqual-unsorted": ("aqual1", _asp_time(_swapped_rows), "time decreases at row 4"),
    "asol-late-rows": ("asol1", _asp_time(_late_rows), "after TSTOP"),
    "asol-tstop-1e300": ("asol1", set_header(TSTOP=1e300), "TSTOP 1e+300 is not a time"),
    "acen-float32-time": ("acen1", _asp_time_float32, "column time has TFORM 1E"),
}


@pytest.mark.parametrize("variant", sorted(ASP_CASES))
def test_bad_asp_l1_refused(tmp_path, monkeypatch, variant):
    """Refused with the file named; its error refers to the ingest's frame and back, a cycle
    only the garbage collector frees: the validation pool must not wait for it (shut down at
    a random later moment, it closed descriptors that other files had reused)."""
    suffix, edit, phrase = ASP_CASES[variant]
    monkeypatch.setenv("MICA_SIM_L1_DECIMATE", "40")
    monkeypatch.setenv("MICA_WORKERS", "2")  # the 68 files are validated in a process pool
    mirror, root = tmp_path / "mirror", tmp_path / "asp1"
    mirror.mkdir()
    sim_asp_l1.write_asp_l1(2121, 2, mirror)
    path = next(mirror.glob(f"pcadf*_{suffix}.fits.gz"))
    write_variant(path, path, edit)
    before = set(multiprocessing.active_children())
    report = update_obsid_archive(ASP_L1, f"dir:{mirror}", [2121], data_root=root)
    assert set(multiprocessing.active_children()) <= before
    assert not report.ok and 2121 in report.failed, report.summary()
    assert [e.filename for e in report.ingest.rejected] == [path.name], report.summary()
    err = report.ingest.rejected[0]
    assert phrase in err.problem and path.name in str(err), str(err)
    assert phrase in (root / "rejected" / (path.name + ".reason")).read_text()
    assert (root / "rejected" / path.name).exists()
    assert asp_l1.get_files(2121, data_root=root) == []  # the revision is not complete
    assert check_archive(ASP_L1, data_root=root).ok


def test_future_times_allowed_for_simulated_files_only(tmp_path, real_l0_dir):
    """The simulated mission runs to 2030: its files are accepted beyond this machine's
    clock; a flight file claiming a time past now (plus a margin) is refused."""
    t0 = to_secs("2028:100:00:00:00")
    sim_root = tmp_path / "sim-aca0"
    report = update_archive(L0, "sim", t0, t0 + 3600.0, data_root=sim_root)
    assert report.ingested and not report.rejected, report.summary()
    real = sorted(real_l0_dir.glob("*.fits.gz"))[0]
    with fits.open(real) as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    shift = t0 - hdus[1].header["TSTART"]
    for key in ("TSTART", "TSTOP"):
        for hdu in hdus:
            if key in hdu.header:
                hdu.header[key] += shift
    hdus[1].data["TIME"] += shift
    folder = tmp_path / "upstream"
    folder.mkdir()
    name = f"acaf{int(t0)}N001_{real.name.split('_')[1]}_img0.fits.gz"
    hdus.writeto(folder / name, checksum=True)
    with pytest.raises(RejectedFile, match="not a time of the mission .* to now"):
        describe_file(L0, name, folder / name)


def _astropy_unparsable(src: Path, dest: Path) -> None:
    """``src`` with a TFORM astropy cannot parse (checksum cards removed, so the file gets
    past the checksum check to the column parsing)."""
    raw = bytearray(gzip.decompress(src.read_bytes()))
    for key in (b"CHECKSUM=", b"DATASUM =", b"TFORM3  ="):
        at = 0
        while (at := raw.find(key, at)) >= 0:
            if at % 80 == 0:
                raw[at : at + 80] = (b"TFORM3  = '-1'" if key[:5] == b"TFORM" else b"").ljust(80)
            at += 80
    dest.write_bytes(gzip.compress(bytes(raw)))


def test_malformed_file_does_not_stop_the_update(tmp_path, real_l0_dir):
    """A file astropy cannot parse is refused and named; the others are ingested, the
    command exits 1, nothing stays in staging, and a re-run changes nothing."""
    from click.testing import CliRunner

    from mica.cli import main

    files = sorted(real_l0_dir.glob("acaf17626716*.fits.gz"))[:3]
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    for path in files[1:]:
        shutil.copy(path, upstream / path.name)
    _astropy_unparsable(files[0], upstream / files[0].name)
    root = tmp_path / "aca0"
    args = ["update", "aca-l0", "--start", "2003:214", "--stop", "2003:216", "--quiet"]
    args += ["--source", f"dir:{upstream}", "--data-root", str(root)]
    for _run in (1, 2):  # the re-run refuses it again and changes nothing else
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert f"{files[0].name}: malformed file (VerifyError" in result.output
        with ArchiveIndex.open_for_reading(L0, root) as index:
            assert sorted(r["filename"] for r in index.query()) == [p.name for p in files[1:]]
        assert (root / "rejected" / files[0].name).exists()
        assert not (root / "staging").exists() or not any((root / "staging").iterdir())
    assert check_archive(L0, data_root=root).ok
