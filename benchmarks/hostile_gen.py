"""Hostile variants of ACA files and the real update path they go through (one generator).

Used by the hypothesis fuzz suite (tests/hardening/test_fuzz_files.py) and the hardening benchmark
(benchmarks/bench_hardening.py). Every mutation draws its choices from a ``pick`` object
with ``integers(lo, hi, size=None)`` (``hi`` exclusive), ``random()`` and ``choice(seq)``:
a `numpy.random.Generator` (the benchmark) or `Draws` over hypothesis' ``data`` (the tests),
so both run the same mutations. Families: L0 files (real 2003 and simulated), simulated
obspars (text) and simulated aspect L1 files (FITS).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from mica.archive import aca_l0
from mica.engine.index import ArchiveIndex
from mica.engine.index_check import check_archive
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.product import FileProduct
from mica.engine.time_update import update_archive
from mica.products.aca_l0 import L0
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim import asp_l1 as sim_asp_l1
from mica.sim import obspar as sim_obspar
from mica.sim.mission import default_mission

FITS_MUTATIONS = ("card", "tform", "value", "flip", "truncate", "gzip")
TEXT_MUTATIONS = ("param", "drop", "flip", "truncate", "gzip")
#: ``elsewhere``: a ``dir:`` source assigns a file to the obsid its content names, so a variant
#: whose OBS_ID changed is not delivered for the requested obsid at all (and nothing changes)
CLEAN = ("refused", "accepted", "elsewhere")
OUTCOMES = (*CLEAN, "crash", "wrong_accept", "data_changed")
_NUMPY = {"J": ">i4", "D": ">f8", "E": ">f4", "I": ">i2", "B": "u1", "K": ">i8"}
_CARDS = ("TSTART", "TSTOP", "NAXIS2", "TFORM1", "TTYPE2", "TUNIT1", "TFORM4", "EXTNAME")
_CARD_VALUES = (-1, 0, 10**12, "junk", float("nan"), 1e30, "", "caf\u00e9")
_PARAM_VALUES = ("-inf", "inf", "nan", "-1e300", "1e999", "9" * 30, "", "x,y", "0", "-1", "\x00")
OBSPAR_OBSID, OBSPAR_BASE_OBSID = 7000, 7001
ASP_OBSID, ASP_BASE_OBSID, ASP_REV = 2121, 2122, 2


class Draws:
    """The `numpy.random.Generator` calls the mutations use, drawn from hypothesis' ``data``
    (so hypothesis can shrink a failing case)."""

    def __init__(self, data: Any):
        from hypothesis import strategies as st

        self._st, self._data = st, data

    def integers(self, lo: int, hi: int, size: int | None = None) -> Any:
        one = self._st.integers(int(lo), int(hi) - 1)
        if size is None:
            return self._data.draw(one)
        return np.array(self._data.draw(self._st.lists(one, min_size=size, max_size=size)))

    def random(self) -> float:
        return self._data.draw(self._st.floats(0.0, 1.0, exclude_max=True))

    def choice(self, seq: Any) -> Any:
        return self._data.draw(self._st.sampled_from(list(seq)))


# --- mutations -------------------------------------------------------------------------------
def raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _fits_bytes(hdus: fits.HDUList) -> bytes:
    out = io.BytesIO()
    hdus.writeto(out, output_verify="silentfix", checksum=True)
    return out.getvalue()


def _edit_card(raw: bytes, pick: Any) -> bytes:
    with fits.open(io.BytesIO(raw)) as hdus:
        header = hdus[int(pick.integers(0, len(hdus)))].header
        key = str(pick.choice(_CARDS))
        value = _CARD_VALUES[int(pick.integers(0, len(_CARD_VALUES)))]
        if pick.random() < 0.25 and key in header:
            del header[key]
        else:
            try:
                header[key] = value
            except (ValueError, TypeError):
                header[key] = "junk"
        try:
            return _fits_bytes(hdus)
        except Exception:  # astropy itself refuses to write it: offer the edited bytes
            return raw.replace(b"TSTART  =", b"TSTART = ", 1)


def _edit_tform(raw: bytes, pick: Any) -> bytes:
    with fits.open(io.BytesIO(raw)) as hdus:
        table = hdus[1]
        cols = list(table.columns)
        k = int(pick.integers(0, len(cols)))
        col = cols[k]
        fmt = str(pick.choice(["J", "D", "E", "I", "B", "K", "16A", "36I", "2D"]))
        data = np.asarray(table.data[col.name])
        try:
            if fmt.endswith("A"):
                values = np.array([b"x"] * len(data))
            elif fmt in ("36I", "2D"):
                width, dtype = (36, np.int16) if fmt == "36I" else (2, np.float64)
                values = np.zeros((len(data), width), dtype=dtype)
                values[:, 0] = data.reshape(len(data), -1)[:, 0]
            else:
                values = data.reshape(len(data), -1)[:, 0].astype(_NUMPY[fmt])
        except Exception:
            values = np.zeros(len(data), dtype=np.int32)
            fmt = "J"
        cols[k] = fits.Column(name=col.name, format=fmt, array=values)
        new = fits.BinTableHDU.from_columns(cols, header=table.header)
        return _fits_bytes(fits.HDUList([hdus[0], new, *hdus[2:]]))


def _edit_value(raw: bytes, pick: Any) -> bytes:
    with fits.open(io.BytesIO(raw)) as hdus:
        data = hdus[1].data
        name = str(pick.choice(data.columns.names))
        col = data[name]
        rows = pick.integers(0, len(col), size=int(pick.integers(1, 5)))
        if col.dtype.kind == "f":
            col[rows] = [np.nan, np.inf, -1e30, 0.0][int(pick.integers(0, 4))]
        elif col.dtype.kind in "iu":
            info = np.iinfo(col.dtype)
            col[rows] = [info.min, info.max, 0][int(pick.integers(0, 3))]
        else:
            col[rows] = col[rows[:1]]
        if name.upper() == "TIME" and pick.random() < 0.5:
            col[:] = col[::-1].copy()  # out of order
        return _fits_bytes(hdus)


def _edit_param(text: str, pick: Any, drop: bool) -> str:
    """An obspar line (``name,type,mode,value,...``) with a hostile value, or dropped."""
    lines = text.splitlines()
    k = int(pick.integers(0, len(lines)))
    if drop:
        del lines[k]
    else:
        fields = lines[k].split(",")
        if len(fields) > 3:
            fields[3] = str(pick.choice(_PARAM_VALUES))
        lines[k] = ",".join(fields)
    return "\n".join(lines) + "\n"


def _bytes_damage(raw: bytes, kind: str, pick: Any) -> bytes:
    if kind == "flip":
        buf = bytearray(raw)
        for at in pick.integers(0, len(buf), size=int(pick.integers(1, 9))):
            buf[int(at)] ^= 1 << int(pick.integers(0, 8))
        return bytes(buf)
    if kind == "truncate":
        return raw[: int(pick.integers(0, len(raw)))]
    return raw


def _gzip(raw: bytes, kind: str, pick: Any) -> bytes:
    out = gzip.compress(raw, mtime=0)
    if kind != "gzip":
        return out
    buf = bytearray(out)
    how = int(pick.integers(0, 3))
    if how == 0:
        buf = buf[: int(pick.integers(2, len(buf)))]
    elif how == 1:
        buf[int(pick.integers(10, len(buf) - 8))] ^= 0xFF
    else:
        buf[-8:] = bytes(8)  # CRC and size trailer
    return bytes(buf)


def mutate(path: Path, kind: str, pick: Any) -> bytes:
    """One hostile variant (gzipped file bytes) of the FITS file ``path``."""
    raw = raw_bytes(path)
    if kind == "card":
        raw = _edit_card(raw, pick)
    elif kind == "tform":
        raw = _edit_tform(raw, pick)
    elif kind == "value":
        raw = _edit_value(raw, pick)
    return _gzip(_bytes_damage(raw, kind, pick), kind, pick)


def mutate_text(path: Path, kind: str, pick: Any) -> bytes:
    """One hostile variant (gzipped bytes) of the obspar (text) file ``path``."""
    raw = raw_bytes(path)
    if kind in ("param", "drop"):
        raw = _edit_param(raw.decode("latin-1"), pick, kind == "drop").encode("latin-1")
    return _gzip(_bytes_damage(raw, kind, pick), kind, pick)


# --- L0: batches through update_archive -------------------------------------------------------
def index_state(product: FileProduct, root: Path) -> dict[str, str]:
    """The archive's data: index rows and the bytes of each indexed file."""
    if not (root / "archfiles.db3").exists():
        return {}
    with ArchiveIndex(product, root) as index:
        rows = index.query()
    return {
        r["filename"]: f"{r['checksum']} "
        + hashlib.sha256(product.path(r, root).read_bytes()).hexdigest()
        for r in rows
    }


def build_l0_base(files: list[Path], where: Path) -> Path:
    """An L0 archive of ``files`` through the real update path."""
    folder = where / "upstream"
    folder.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, folder / path.name)
    times = [L0.name_time(p.name) for p in files]
    root = where / "aca0"
    update_archive(L0, f"dir:{folder}", min(times) - 10, max(times) + 10, data_root=root)
    return root


def _crash(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/mica/" in f.filename]
    at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"crash {type(exc).__name__}{at}: {exc}"[:300]


def _refused(root: Path, name: str, reasons: dict[str, str]) -> str:
    """refused when the reason names the file and the file and reason are in rejected/."""
    kept = root / "rejected" / name
    reason = root / "rejected" / (name + ".reason")
    if name in reasons[name] and kept.exists() and reason.exists():
        return "refused"
    return f"wrong_accept refusal not kept or not named: {reasons[name][:150]}"


def run_l0_batch(
    base: Path, variants: dict[str, bytes], work: Path, span: tuple[float, float]
) -> dict[str, str]:
    """Offer L0 ``variants`` (name -> bytes) to a copy of ``base``; outcome per name."""
    root = work / "aca0"
    work.mkdir(parents=True)
    shutil.copytree(base, root)
    before = index_state(L0, root)
    up = work / "up"
    up.mkdir()
    for name, data in variants.items():
        (up / name).write_bytes(data)
    try:
        report = update_archive(L0, f"dir:{up}", span[0] - 10, span[1] + 10, data_root=root)
    except Exception as exc:  # an unhandled error out of the update
        return {name: _crash(exc) for name in variants}
    out: dict[str, str] = {}
    reasons = {err.filename: str(err) for err in report.rejected}
    after = index_state(L0, root)
    changed = {n for n in before if before[n] != after.get(n)} - set(variants)
    staged = [p for p in (root / "staging").rglob("*") if p.is_file()]
    for name, data in variants.items():
        if name in reasons:
            out[name] = _refused(root, name, reasons)
        elif name in after:
            out[name] = _l0_read_back(root, name, data)
        else:
            out[name] = "crash not reported"
        if changed:
            out[name] = "data_changed " + ",".join(sorted(changed))[:200]
        elif staged:
            out[name] = f"crash left in staging: {staged[0].name}"
    if not check_archive(L0, data_root=root).ok:
        out = {n: "data_changed check not clean" for n in out}
    return out


def _l0_read_back(root: Path, name: str, data: bytes) -> str:
    """accepted when store and file reads agree and hold astropy's TIME values."""
    with fits.open(io.BytesIO(gzip.decompress(data))) as hdus:
        times = np.asarray(hdus[1].data["TIME"], dtype=float)
        slot = int(hdus[1].header.get("IMGNUM1", hdus[0].header.get("IMGNUM1", -1)))
    if slot < 0 or slot > 7:
        slot = int(name.split("_")[1])
    lo, hi = float(np.nanmin(times)), float(np.nanmax(times))
    stored = aca_l0.get_slot_data(lo - 1, hi + 1, slot, data_root=root)
    direct = aca_l0.get_slot_data(lo - 1, hi + 1, slot, data_root=root, use_store=False)
    for col in stored.dtype.names:
        a, b = np.ma.getdata(stored[col]), np.ma.getdata(direct[col])
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return f"wrong_accept store != files in {col}"
    if not np.isin(times, np.ma.getdata(stored["TIME"])).all():
        return "wrong_accept TIME values not served"
    return "accepted"


# --- obspar and aspect L1: one variant through update_obsid_archive ---------------------------
def write_obspar_mirror(mirror: Path, obsid: int) -> Path:
    """A ``dir:`` mirror with the simulated obspar of ``obsid`` revision 1; its path."""
    obs = default_mission().observation(obsid)
    text = sim_obspar.obspar_text(
        obs, sim_obspar.Obi(0, obs.tstart, obs.tstop), 1, obs.tstop + 86400
    )
    folder = mirror / f"{obsid:05d}"[:2] / f"{obsid:05d}_v01"
    folder.mkdir(parents=True)
    path = folder / sim_obspar.obspar_name(obsid, 0, 1)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    (folder.parent / f"{obsid:05d}").symlink_to(folder.name)
    return path


def write_asp_mirror(mirror: Path, obsid: int) -> list[Path]:
    """A ``dir:`` mirror with the simulated aspect L1 files of ``obsid`` (decimated 40x)."""
    os.environ["MICA_SIM_L1_DECIMATE"] = "40"  # small files: the mutations, not the size
    mirror.mkdir(parents=True, exist_ok=True)
    sim_asp_l1.write_asp_l1(obsid, ASP_REV, mirror)
    return sorted(p for p in mirror.rglob("*.fits.gz"))


def obsid_family(family: str) -> tuple[Any, int, int]:
    """(product, obsid of the variants, obsid of the base archive) of an obsid family."""
    if family == "obspar":
        return OBSPAR, OBSPAR_OBSID, OBSPAR_BASE_OBSID
    return ASP_L1, ASP_OBSID, ASP_BASE_OBSID


def build_obsid_base(family: str, where: Path) -> tuple[Path, Path, list[Path]]:
    """(archive of the base obsid, mirror of the variant obsid, its data files)."""
    product, obsid, base_obsid = obsid_family(family)
    write = write_obspar_mirror if family == "obspar" else write_asp_mirror
    write(where / "base-mirror", base_obsid)
    root = where / "root"
    update_obsid_archive(product, f"dir:{where / 'base-mirror'}", [base_obsid], data_root=root)
    mirror = where / "mirror"
    files = write(mirror, obsid)
    files = files if isinstance(files, list) else [files]
    # only the files the product keeps: the others are dropped unread, whatever they hold
    return root, mirror, [f for f in files if product.classify(f.name) == "data"]


def run_obsid_case(
    family: str, base: Path, mirror: Path, target: Path, data: bytes, work: Path
) -> str:
    """Offer ``mirror`` with ``target`` replaced by ``data`` to a copy of ``base``."""
    product, obsid, _ = obsid_family(family)
    root, up = work / "root", work / "mirror"
    work.mkdir(parents=True)
    shutil.copytree(base, root, symlinks=True)
    shutil.copytree(mirror, up, symlinks=True)
    offered = up / target.relative_to(mirror)
    offered.write_bytes(data)
    name = offered.name
    before = index_state(product, root)
    try:
        report = update_obsid_archive(product, f"dir:{up}", [obsid], data_root=root)
    except Exception as exc:
        return _crash(exc)
    after = index_state(product, root)
    if any(before[n] != after.get(n) for n in before):
        return "data_changed base obsid"
    if [p for p in (root / "staging").rglob("*") if p.is_file()]:
        return "crash left in staging"
    if not check_archive(product, data_root=root).ok:
        return "data_changed check not clean"
    reasons = {err.filename: str(err) for err in report.ingest.rejected}
    if name in reasons:
        if obsid not in report.failed:
            return "wrong_accept refused but the obsid not failed"
        return _refused(root, name, reasons)
    if name not in after:
        if not (root / "rejected" / name).exists() and _names_other_obsid(data, obsid):
            return "elsewhere"
        return f"crash not reported: {report.summary()[:200]}"
    with ArchiveIndex(product, root) as index:
        archived = product.path(index.get(name), root)
    if raw_bytes(archived) != gzip.decompress(data):
        return "wrong_accept archived bytes differ from the offered file"
    if product is ASP_L1 and not _same_fits(archived, data):
        return "wrong_accept astropy reads differ"
    return "accepted"


def _names_other_obsid(data: bytes, obsid: int) -> bool:
    """True when the offered FITS bytes' OBS_ID is readable and not ``obsid``."""
    try:
        with fits.open(io.BytesIO(gzip.decompress(data))) as hdus:
            value = hdus[0].header.get("OBS_ID", hdus[1].header.get("OBS_ID"))
        return int(str(value).strip()) != obsid
    except Exception:
        return False


def _same_fits(archived: Path, data: bytes) -> bool:
    """astropy's reads of the archived file and of the offered bytes hold the same tables."""
    with fits.open(archived) as a, fits.open(io.BytesIO(gzip.decompress(data))) as b:
        if len(a) != len(b):
            return False
        for ha, hb in zip(a, b):
            if (ha.data is None) != (hb.data is None):
                return False
            if ha.data is not None and ha.data.tobytes() != hb.data.tobytes():
                return False
    return True
