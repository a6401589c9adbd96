"""One hostile file never breaks an update: bounded decompression, malformed files refused.

Every case goes through the real update path (the ``mica`` CLI's entry point, here, or
`update_archive`) with a ``dir:`` folder of real 2003 L0 files: a gzip bomb is refused with
the child's peak memory bounded (the CLI in a subprocess, whose memory is measured); a
malformed but readable file is quarantined while the good files around it are ingested;
quarantined copies are mode 600.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from mica.cli import main
from mica.engine.fitscheck import read_bytes
from mica.engine.index import ArchiveIndex
from mica.engine.ingest import quarantine
from mica.engine.product import RejectedFile
from mica.products.aca_l0 import L0

BLOCK = 2880
# 5 real files in time order: the middle one is replaced by the hostile variant
GOOD_SLICE = slice(0, 5)
BAD_INDEX = 2


def _mica(*args: str, archive: Path) -> subprocess.CompletedProcess:
    """``mica --archive <archive> <args>`` through the CLI's entry point in this process (a
    subprocess would add an interpreter's start to each call); a traceback fails the test."""
    cmd = ["--archive", str(archive), *args]
    result = CliRunner().invoke(main, cmd)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(cmd, result.exit_code, result.stdout, result.stderr)


def _files(real_l0_dir: Path) -> list[Path]:
    return sorted(real_l0_dir.glob("acaf*.fits.gz"))[GOOD_SLICE]


def _window(files: list[Path]) -> tuple[str, str]:
    times = [L0.name_time(p.name) for p in files]
    return str(min(times) - 10), str(max(times) + 10)


def _cards(raw: bytearray, hdu_start: int):
    """(offset, card) of each header card of the HDU starting at ``hdu_start``."""
    i = hdu_start
    while True:
        card = bytes(raw[i : i + 80])
        yield i, card
        if card.startswith(b"END     "):
            return
        i += 80


def _table_start(raw: bytearray) -> int:
    for i in range(0, len(raw), BLOCK):
        if raw[i : i + 8] == b"XTENSION":
            return i
    raise AssertionError("no extension")


def _set_card(raw: bytearray, key: bytes, card: bytes, hdu_start: int) -> None:
    for i, old in _cards(raw, hdu_start):
        if old[:8] == key.ljust(8):
            raw[i : i + 80] = card.ljust(80)[:80]
            return
    raise AssertionError(f"no {key!r} card")


def _unsummed(src: Path) -> bytearray:
    """The FITS bytes of ``src`` with CHECKSUM/DATASUM blanked in every HDU (edits stay
    readable instead of failing the checksum test first)."""
    raw = bytearray(gzip.decompress(src.read_bytes()))
    starts = [0, _table_start(raw)]
    for start in starts:
        for i, card in list(_cards(raw, start)):
            if card[:8] in (b"CHECKSUM", b"DATASUM "):
                raw[i : i + 80] = b" " * 80
    return raw


def _text_quality(raw: bytearray) -> None:
    _set_card(raw, b"TFORM2", b"TFORM2  = '4A      '", _table_start(raw))


def _tfields_lie(raw: bytearray) -> None:
    _set_card(raw, b"TFIELDS", b"TFIELDS =                   28", _table_start(raw))


def _image_dim(raw: bytearray) -> None:
    start = _table_start(raw)
    key = next(c[:8].strip() for _i, c in _cards(raw, start) if c.startswith(b"TDIM"))
    _set_card(raw, key, key.ljust(8) + b"= '(6,6)   '", start)


def _non_ascii(raw: bytearray) -> None:
    start = _table_start(raw)
    skip = (b"XTENSION", b"TTYPE", b"TFORM", b"TDIM", b"TUNIT")
    for i, card in _cards(raw, start):
        if card[8:11] == b"= '" and not card.startswith(skip):
            raw[i + 11] = 0xE9  # first character of the quoted value
            return
    raise AssertionError("no string card")


MALFORMED = {
    "text-quality": _text_quality,
    "tfields-lie": _tfields_lie,
    "image-dimension": _image_dim,
    "non-ascii-header": _non_ascii,
}


# astropy warns while it reads the malformed file mica then refuses
@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_one_malformed_file_never_stops_an_update(kind, real_l0_dir, tmp_path):
    files = _files(real_l0_dir)
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    for p in files:
        shutil.copy(p, upstream / p.name)  # a dir: source follows no link out of its folder
    bad = files[BAD_INDEX]
    raw = _unsummed(bad)
    MALFORMED[kind](raw)
    (upstream / bad.name).unlink()
    (upstream / bad.name).write_bytes(gzip.compress(bytes(raw), mtime=0))
    archive = tmp_path / "archive"
    start, stop = _window(files)
    args = ("update", "aca-l0", "--start", start, "--stop", stop, "--quiet")

    result = _mica(*args, "--source", f"dir:{upstream}", archive=archive)
    assert result.returncode == 1, result.stdout + result.stderr
    assert bad.name in result.stdout + result.stderr
    root = archive / "aca0"
    with ArchiveIndex(L0, root) as index:
        names = {r["filename"] for r in index.query()}
    assert names == {p.name for p in files if p != bad}
    rejected = root / "rejected"
    assert (rejected / bad.name).exists()
    assert bad.name in (rejected / (bad.name + ".reason")).read_text()
    staging = root / "staging"
    assert not staging.exists() or not any(staging.rglob("*"))
    check = _mica("check", archive=archive)
    assert check.returncode == 0, check.stdout + check.stderr

    # the re-run offers only the bad file again: refused again, nothing new, nothing stuck
    again = _mica(*args, "--source", f"dir:{upstream}", archive=archive)
    assert again.returncode == 1 and bad.name in again.stdout + again.stderr
    with ArchiveIndex(L0, root) as index:
        assert {r["filename"] for r in index.query()} == names
    assert not staging.exists() or not any(staging.rglob("*"))


def _bomb(src: Path, dest: Path, zeros: int) -> Path:
    """A valid L0 file followed by ``zeros`` zero bytes, gzipped in streaming fashion."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 24)
    with open(dest, "wb") as fh:
        fh.write(packer.compress(gzip.decompress(src.read_bytes())))
        for _ in range(zeros // len(block)):
            fh.write(packer.compress(block))
        fh.write(packer.flush())
    return dest


RSS_SCRIPT = """
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(run.stdout + run.stderr)
print("RC", run.returncode)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_gzip_bomb_is_refused_with_bounded_memory(real_l0_dir, tmp_path):
    files = _files(real_l0_dir)[:2]
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    shutil.copy(files[0], upstream / files[0].name)
    bomb = _bomb(files[1], upstream / files[1].name, 1 << 30)
    assert bomb.stat().st_size < 4 << 20  # ~1 MB on disk, 1 GB inflated
    archive = tmp_path / "archive"
    start, stop = _window(files)
    cmd = [sys.executable, "-m", "mica.cli", "--archive", str(archive), "update", "aca-l0"]
    cmd += ["--start", start, "--stop", stop, "--quiet", "--source", f"dir:{upstream}"]
    run = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, *cmd], capture_output=True, text=True, timeout=300
    )
    lines = run.stdout.splitlines()
    assert "RC 1" in lines, run.stdout + run.stderr
    maxrss_mb = int(lines[-1].split()[1]) / 1024
    assert maxrss_mb < 400, f"peak RSS {maxrss_mb:.0f} MB"
    reason = (archive / "aca0" / "rejected" / (bomb.name + ".reason")).read_text()
    assert bomb.name in reason and "trailing bytes after the last HDU" in reason
    with ArchiveIndex(L0, archive / "aca0") as index:
        assert [r["filename"] for r in index.query()] == [files[0].name]


def test_inflate_refuses_beyond_headers_and_cap(real_l0_dir, tmp_path):
    src = _files(real_l0_dir)[0]
    raw = gzip.decompress(src.read_bytes())
    assert read_bytes(src, src.name) == raw  # a whole file reads back byte for byte
    extra = tmp_path / "extra.fits.gz"
    extra.write_bytes(gzip.compress(raw + b"\0" * BLOCK))  # one block more than announced
    with pytest.raises(RejectedFile, match=r"extra\.fits\.gz.*trailing bytes .* announce"):
        read_bytes(extra, extra.name)
    with pytest.raises(RejectedFile, match=rf"headers announce {len(raw)} bytes, more than"):
        read_bytes(src, src.name, max_bytes=len(raw) - BLOCK)
    assert read_bytes(src, src.name, max_bytes=len(raw)) == raw
    garbage = tmp_path / "garbage.fits.gz"
    garbage.write_bytes(gzip.compress(raw) + b"junk")
    with pytest.raises(RejectedFile, match="trailing bytes after the gzip stream"):
        read_bytes(garbage, garbage.name)
    plain = tmp_path / "plain.fits"
    plain.write_bytes(raw)
    with pytest.raises(RejectedFile, match="more than the limit"):
        read_bytes(plain, plain.name, max_bytes=len(raw) - 1)


def test_quarantined_copy_and_reason_are_mode_600(tmp_path):
    root = tmp_path / "aca0"
    for mode in (0o600, 0o644):
        src = tmp_path / f"acaf{mode:o}.fits.gz"
        src.write_bytes(b"hostile")
        os.chmod(src, mode)
        quarantine(root, src, RejectedFile(src.name, "refused for the test"))
        for kept in (root / "rejected" / src.name, root / "rejected" / (src.name + ".reason")):
            assert stat.S_IMODE(kept.stat().st_mode) == 0o600, kept
        assert (root / "rejected" / src.name).read_bytes() == b"hostile"


def _revision_with_obi(tmp_path: Path, monkeypatch, obi: int) -> tuple[Path, Path, bytes]:
    """A simulated revision of obsid 2121 whose first per-revision aspect file has OBI_NUM
    ``obi`` (valid checksums): the mirror, that file and its bytes as offered."""
    from astropy.io import fits

    from mica.sim import asp_l1 as sim_asp_l1

    monkeypatch.setenv("MICA_SIM_L1_DECIMATE", "40")  # inherited by the subprocesses
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sim_asp_l1.write_asp_l1(2121, 2, mirror)
    bad = sorted(mirror.glob("pcadf*_asol1.fits.gz"))[0]
    with fits.open(bad) as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    hdus[1].header["OBI_NUM"] = obi
    raw = tmp_path / bad.name[:-3]
    hdus.writeto(raw, checksum=True)
    offered = gzip.compress(raw.read_bytes(), mtime=0)
    bad.write_bytes(offered)
    return mirror, bad, offered


def test_obi_num_beyond_the_name_width_is_refused(tmp_path, monkeypatch):
    """Per-revision aspect names carry no OBI, so the header's OBI_NUM is bounded (0..999):
    10**19 (beyond SQLite's 64-bit integers) is refused with the file named, the rest of the
    revision archived."""
    from mica.products.asp_l1 import ASP_L1

    mirror, bad, offered = _revision_with_obi(tmp_path, monkeypatch, 10**19)
    archive = tmp_path / "archive"
    root = archive / ASP_L1.subdir
    result = _mica(
        "update",
        "asp-l1",
        "--obsid",
        "2121",
        "--quiet",
        "--source",
        f"dir:{mirror}",
        archive=archive,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{bad.name}: OBI_NUM {10**19} is outside 0..999" in out, out
    assert "Traceback" not in out
    assert (root / "rejected" / bad.name).read_bytes() == offered
    with ArchiveIndex(ASP_L1, root) as index:
        names = {r["filename"] for r in index.query()}
    wanted = {p.name for p in mirror.iterdir() if ASP_L1.classify(p.name) == "data"}
    assert names == wanted - {bad.name} and len(names) > 10


def test_unexpected_commit_error_quarantines_the_file(tmp_path, monkeypatch):
    """The ``refusing()`` path of ingest: a product description with a bug (its row for one
    file carries an integer SQLite cannot store, so the real index insert raises OverflowError,
    neither a refusal nor an archive error). The batch is taken back out, each file applied
    alone, and that one quarantined with the error named; the others are archived and the
    archive checks clean."""
    from mica.engine.executors.inline import InlineExecutor
    from mica.engine.index_check import check_archive
    from mica.engine.ingest import ingest_files
    from mica.products.asp_l1 import AspL1Product

    mirror, bad, offered = _revision_with_obi(tmp_path, monkeypatch, 1)

    class UnstorableRow(AspL1Product):
        def describe(self, name, hdus):
            row = super().describe(name, hdus)
            if name == bad.name:
                row["obi"] = 10**19  # > 2**63 - 1
            return row

    product = UnstorableRow()
    archive = tmp_path / "archive"
    root = product.root(archive)
    files = sorted(p for p in mirror.iterdir() if product.classify(p.name) == "data")
    report = ingest_files(product, files, data_root=archive, executor=InlineExecutor())
    assert [err.filename for err in report.rejected] == [bad.name], report.summary()
    reason = (root / "rejected" / (bad.name + ".reason")).read_text()
    assert reason.startswith(f"{bad.name}: could not be archived (OverflowError"), reason
    assert (root / "rejected" / bad.name).read_bytes() == offered  # kept as offered
    with ArchiveIndex(product, root) as index:
        names = {r["filename"] for r in index.query()}
    assert names == {p.name for p in files} - {bad.name} and len(names) > 10
    assert not list(root.rglob(f"*_v*/{bad.name}"))  # nothing of it left in the layout
    staging = root / "staging"
    assert not staging.exists() or not any(staging.rglob("*"))
    check = check_archive(product, archive)
    assert check.ok and check.files == len(names), check.summary()
