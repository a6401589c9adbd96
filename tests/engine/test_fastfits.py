"""The ingest fast path (`mica.engine.fastfits`) reads what astropy reads, or falls back.

On the real 2003 L0 files and simulated ones, the fast path's index rows and store arrays
equal the astropy path's (every column, dtype and value); its header values and columns equal
astropy's; a file with a feature it does not parse (written with astropy) is read by astropy
with the same outcome as before; a file the checks refuse gets astropy's refusal.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mica.engine.describe import describe_fast, describe_fits, finish_row
from mica.engine.fastfits import parse_table
from mica.engine.fitscheck import open_raw, read_bytes
from mica.engine.ingest import ingest_files
from mica.engine.product import RejectedFile
from mica.products.aca_l0 import L0
from mica.sim.aca_l0 import plan_l0_files, write_l0_file

SIM_WINDOW = ("2012:001:00:00:00", "2012:001:00:20:00")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """Simulated files of 20 minutes, 8x8 and 6x6 slots, written through the simulator."""
    dest = tmp_path_factory.mktemp("fast-sim")
    written = [write_l0_file(plan, dest) for plan in plan_l0_files(*SIM_WINDOW)]
    return written[0].parent


def astropy_describe(name: str, path: Path) -> tuple[dict, dict]:
    """The astropy path of `describe_fits` (index row, store arrays), not the fast one."""
    raw = read_bytes(path, name, L0.max_file_bytes)
    hdus, checksum = open_raw(raw, name, L0.extname)
    with hdus:
        row = L0.describe(name, hdus)
        finish_row(row, checksum, hdus[0].header)
        arrays = L0.store_arrays(hdus, row)
    return row, arrays


def fast_describe(name: str, path: Path) -> tuple[dict | None, dict]:
    arrays: dict = {}
    row = describe_fast(L0, name, read_bytes(path, name, L0.max_file_bytes), arrays)
    return row, arrays.get(name, {})


def assert_same_arrays(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        assert got[key].shape == value.shape, key
        assert np.array_equal(got[key], value, equal_nan=value.dtype.kind == "f"), key


def rewrite(src: Path, dest: Path, edit) -> Path:
    """``src`` with ``edit`` applied to its HDUs, written by astropy with fresh checksums."""
    with fits.open(src) as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    edit(hdus)
    buf = io.BytesIO()
    hdus.writeto(buf, checksum=True)
    dest.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    return dest


@pytest.mark.parametrize("kind", ["real", "sim"])
def test_fast_rows_and_arrays_equal_astropy(kind, real_l0_dir, sim_dir):
    files = sorted((real_l0_dir if kind == "real" else sim_dir).glob("acaf*.fits.gz"))
    assert len(files) >= 8
    sizes = set()
    for path in files:
        row, arrays = fast_describe(path.name, path)
        assert row is not None, f"{path.name}: the fast path did not decide"
        want_row, want_arrays = astropy_describe(path.name, path)
        assert row == want_row
        assert_same_arrays(arrays, want_arrays)
        sizes.add(row["imgsize"])
    assert sizes == ({4, 6, 8} if kind == "real" else {6, 8})


def test_header_values_and_columns_equal_astropy(real_l0_dir, sim_dir):
    """Every valued card parses to astropy's value and type; columns as astropy reads them."""
    for path in [*sorted(real_l0_dir.glob("*.gz"))[:6], *sorted(sim_dir.glob("*.gz"))[:2]]:
        raw = read_bytes(path, path.name)
        table = parse_table(raw, "ACA_IMG0")
        with fits.open(io.BytesIO(raw)) as hdus:
            for cards, header in ((table.primary, hdus[0].header), (table.header, hdus[1].header)):
                keys = [k for k in header if k not in ("COMMENT", "HISTORY", "")]
                assert list(cards) == keys
                for key in keys:
                    assert cards[key] == header[key] and type(cards[key]) is type(header[key])
            cols = hdus[1].columns
            assert table.columns.names == cols.names
            for col, ref in zip(table.columns, cols):
                assert str(col.format) == str(ref.format) and col.repeat == ref.format.repeat
                assert (col.dim, col.bzero, col.bscale) == (ref.dim, ref.bzero, ref.bscale)
            data = hdus[1].data
            for name in cols.names:
                assert table[name].dtype == data[name].dtype, name
                assert np.array_equal(table[name], np.asarray(data[name])), name
        with pytest.raises(KeyError, match="Keyword 'NOPE' not found."):
            table.header["NOPE"]


def test_unsigned_and_text_columns_equal_astropy():
    """TZERO unsigned offsets and text columns (blanks, NULs) read as astropy reads them."""
    rng = np.random.default_rng(16)
    n = 50
    text = rng.choice(np.array([b"ORIG", b"AB  ", b" X\0 ", b"A\0B ", b"    ", b"\0\0\0\0"]), n)
    cols = [
        fits.Column("U16", "1I", bzero=32768, array=rng.integers(0, 2**16, n, dtype=np.uint16)),
        fits.Column("U32", "1J", bzero=2**31, array=rng.integers(0, 2**32, n, dtype=np.uint32)),
        fits.Column("U64", "1K", bzero=2**63, array=rng.integers(0, 2**64, n, dtype=np.uint64)),
        fits.Column("S16", "1I", array=rng.integers(-(2**15), 2**15, n, dtype=np.int16)),
        fits.Column("TXT", "4A", array=text),
        fits.Column("IMG", "6E", dim="(3,2)", array=rng.normal(size=(n, 2, 3)).astype(">f4")),
        fits.Column("VEC", "3D", array=rng.normal(size=(n, 3))),
        fits.Column("BYTE", "B", array=rng.integers(0, 256, n, dtype=np.uint8)),
    ]
    buf = io.BytesIO()
    hdu = fits.BinTableHDU.from_columns(cols, name="T")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf, checksum=True)
    raw = buf.getvalue()
    table = parse_table(raw, "T")
    assert table is not None
    with fits.open(io.BytesIO(raw)) as hdus:
        data = hdus[1].data
        for name in data.names:
            assert table[name].dtype == data[name].dtype, name
            assert table[name].shape == data[name].shape, name
            # plain arrays: astropy's chararray compares text without its trailing blanks
            assert np.array_equal(table[name], np.asarray(data[name])), name
    assert table["U64"].max() > 2**63  # the offset really applied
    assert parse_table(raw, "OTHER") is None  # not the table asked for


def _vla(hdus: fits.HDUList) -> None:
    table = hdus[1]
    extra = fits.Column("VAR", "PJ()", array=[np.arange(i % 3) for i in range(len(table.data))])
    hdus[1] = fits.BinTableHDU.from_columns(
        list(table.columns) + [extra], header=table.header, name="ACA_IMG0"
    )


def _scaled(hdus: fits.HDUList) -> None:
    hdus[1].header["TSCAL1"] = 2.0


def _long_string(hdus: fits.HDUList) -> None:
    hdus[1].header["HDUDOC"] = "a long document reference " * 6  # CONTINUE cards


def _extra_hdu(hdus: fits.HDUList) -> None:
    hdus.append(fits.ImageHDU(np.zeros((4, 4), dtype=np.int16), name="EXTRA"))


def _tdisp(hdus: fits.HDUList) -> None:
    hdus[1].header["TDISP1"] = "F12.3"  # a column keyword the fast reader does not know


#: (edit, whether astropy's path accepts the result): the fast reader parses none of them
FALLBACKS = {
    "variable-length column (heap)": (_vla, False),
    "TSCAL 2": (_scaled, False),
    "CONTINUE long string": (_long_string, True),
    "extra HDU": (_extra_hdu, True),
    "TDISP keyword": (_tdisp, True),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_unparsed_features_fall_back_to_astropy(case, real_l0_dir, tmp_path):
    edit, accepted = FALLBACKS[case]
    src = real_l0_dir / "acaf176267383N001_0_img0.fits.gz"
    path = rewrite(src, tmp_path / src.name, edit)
    raw = read_bytes(path, path.name)
    assert parse_table(raw, L0.extname) is None
    assert describe_fast(L0, path.name, raw, {}) is None
    if accepted:
        arrays: dict = {}
        row = describe_fits(L0, path.name, path, arrays)
        want_row, want_arrays = astropy_describe(path.name, path)
        assert row == want_row
        assert_same_arrays(arrays[path.name], want_arrays)
        # and the same file through the real ingest path
        report = ingest_files(L0, [path], data_root=tmp_path / "aca0")
        assert report.ingested == [path.name], report.summary()
    else:
        with pytest.raises(RejectedFile) as want:
            astropy_describe(path.name, path)
        with pytest.raises(RejectedFile) as got:
            describe_fits(L0, path.name, path, {})
        assert str(got.value) == str(want.value) and path.name in str(got.value)


def _wrong_slot(hdus: fits.HDUList) -> None:
    hdus[1].data["IMGNUM1"][5] = 3


def _nan_time(hdus: fits.HDUList) -> None:
    hdus[1].data["TIME"][2] = np.nan


def _wide_quality(hdus: fits.HDUList) -> None:
    table = hdus[1]
    cols = [
        fits.Column("QUALITY", "1K", array=table.data["QUALITY"]) if c.name == "QUALITY" else c
        for c in table.columns
    ]
    hdus[1] = fits.BinTableHDU.from_columns(cols, header=table.header, name="ACA_IMG0")


@pytest.mark.parametrize(
    "edit, phrase",
    [
        (_wrong_slot, "is not the name's slot 0"),
        (_nan_time, "TIME is not finite in 1 row (first row 2)"),
        (_wide_quality, "column QUALITY has TFORM 1K, expected TFORM 1J"),
    ],
)
def test_fast_path_refusals_are_astropys(edit, phrase, real_l0_dir, tmp_path):
    """A file the fast reader parses but a check refuses: astropy's reading gives the
    refusal, word for word as before."""
    src = real_l0_dir / "acaf176267383N001_0_img0.fits.gz"
    path = rewrite(src, tmp_path / src.name, edit)
    raw = read_bytes(path, path.name)
    assert parse_table(raw, L0.extname) is not None  # parsed, then refused by a check
    assert describe_fast(L0, path.name, raw, {}) is None
    with pytest.raises(RejectedFile) as want:
        astropy_describe(path.name, path)
    with pytest.raises(RejectedFile) as got:
        describe_fits(L0, path.name, path, {})
    assert str(got.value) == str(want.value)
    assert phrase in got.value.problem and path.name in str(got.value)


def test_byte_flip_in_header_is_refused(real_l0_dir, tmp_path):
    """A changed header byte the parser reads happily still fails CHECKSUM on disk."""
    src = real_l0_dir / "acaf176267383N001_0_img0.fits.gz"
    raw = bytearray(gzip.decompress(src.read_bytes()))
    at = raw.index(b"Time-tag of the data record")
    raw[at] = ord("t")
    path = tmp_path / src.name
    path.write_bytes(gzip.compress(bytes(raw), mtime=0))
    assert parse_table(bytes(raw), L0.extname) is not None
    with pytest.raises(RejectedFile, match="CHECKSUM verification failed in HDU 1"):
        describe_fits(L0, path.name, path, {})


def outcome(func, *args) -> tuple:
    """('row', row, arrays) or ('refused', message) or ('error', type) of a describe call."""
    try:
        row, arrays = func(*args)
    except RejectedFile as err:
        return ("refused", str(err))
    except Exception as err:  # noqa: BLE001 -- an unexpected error must be the same too
        return ("error", type(err).__name__)
    return ("row", row, arrays)


def describe_fits_arrays(name: str, path: Path) -> tuple[dict, dict]:
    arrays: dict = {}
    row = describe_fits(L0, name, path, arrays)
    return row, arrays[name]


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.parametrize("kind", ["real", "sim"])
def test_mutated_headers_same_outcome_as_astropy(kind, real_l0_dir, sim_dir, tmp_path):
    """Header cards changed at random (checksum cards blanked so the parsers see the
    change): `describe_fits` accepts, refuses or fails exactly as the astropy reading."""
    src = (
        real_l0_dir / "acaf176267383N001_0_img0.fits.gz"
        if kind == "real"
        else sorted(sim_dir.glob("*.gz"))[0]
    )
    base = bytearray(gzip.decompress(src.read_bytes()))
    for key in (b"CHECKSUM= ", b"DATASUM = "):
        while (at := base.find(key)) >= 0:
            base[at : at + 80] = b"COMMENT".ljust(80)
    ext = base.index(b"XTENSION")
    end = base.index(b"END     ", ext)
    rng = np.random.default_rng(17)
    alphabet = b" '/=.-+0123456789EDTFABIJKLXPQ()&,\x7f\xe9"
    seen = {"row": 0, "refused": 0, "error": 0}
    fast = 0
    for i in range(100):
        raw = bytearray(base)
        for _ in range(rng.integers(1, 3)):
            at = int(rng.integers(0, end)) if rng.random() < 0.15 else int(rng.integers(ext, end))
            raw[at] = alphabet[rng.integers(len(alphabet))]
        path = tmp_path / src.name
        path.write_bytes(gzip.compress(bytes(raw), compresslevel=1, mtime=0))
        want = outcome(astropy_describe, path.name, path)
        got = outcome(describe_fits_arrays, path.name, path)
        seen[want[0]] += 1
        assert got[:2] == want[:2], f"variant {i}"
        if want[0] == "row":
            assert_same_arrays(got[2], want[2])
            fast += describe_fast(L0, path.name, bytes(raw), {}) is not None
    assert seen["row"] and seen["refused"] and fast  # both outcomes and the fast path seen
