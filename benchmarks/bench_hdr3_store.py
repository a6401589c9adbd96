"""Columnar store: header-3 items and slot data from the store, from the FITS files, and floors.

    python benchmarks/bench_hdr3_store.py --days 19 [--work DIR] [--reuse]

Builds a bench archive of N days x 8 slots from the simulated upstream through the real ingest
path (``--reuse``: keep the one already in DIR), then measures side by side in one run, in a
fresh process as a user's session would be: the ingest leaves this process's heap in a state
that made the same reads up to 1.7x slower (glibc's raised mmap threshold). Targets:
a header-3 item >= 300x faster than the file scan and under 30 ms; get_slot_data >= 10x faster
than from the files; images within 2x of the codec's decompression floor.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import blosc2
import h5py
import numpy as np
from bench_archive import DAY, best_of, ingest, print_table, write_upstream

from mica.archive import aca_hdr3, aca_l0
from mica.engine.index import ArchiveIndex
from mica.products.aca_l0 import L0
from mica.time import to_secs

START = "2012:001:00:00:00"


def chunk_paths(root: Path, prefix: str, t0: float, t1: float) -> list[Path]:
    """Chunk files of the partitions starting with ``prefix`` overlapping [t0, t1]."""
    with ArchiveIndex(L0, root) as index:
        rows = index.conn.execute(
            "SELECT path FROM store_chunks WHERE part LIKE ? AND tstop >= ? AND tstart <= ?",
            (f"{prefix}%", t0, t1),
        ).fetchall()
    return [root / r[0] for r in rows]


#: the byte columns ``ccd_temp_fine`` decodes: its high word in slot 6, its low word in slot 7
CCD_TEMP_FINE_BYTES = {6: ["HD3TLM76", "HD3TLM77"], 7: ["HD3TLM62", "HD3TLM63"]}


def floors(chunks: list[tuple[Path, list[str]]], work: Path) -> tuple[float, float, float]:
    """(uncompressed read, one decompression pass, codec alone) seconds for the same
    datasets: an uncompressed HDF5 copy read whole; the stored compressed chunks (taken raw
    from the files beforehand) through the codec, each into new bytes; and the same into one
    reused buffer, so no page is ever faulted in (Blosc's default threads: one per core)."""
    plain, blocks, stored = [], [], []  # compressed blocks; blocks HDF5 kept unfiltered
    for i, (path, groups) in enumerate(chunks):
        copy = work / f"plain{i}.h5"
        with h5py.File(path, "r") as h5, h5py.File(copy, "w") as out:
            for g in groups:
                dset = h5[g]
                out.create_dataset(g, data=dset[...])
                for k in range(dset.id.get_num_chunks()):
                    offset = dset.id.get_chunk_info(k).chunk_offset
                    mask, block = dset.id.read_direct_chunk(offset)
                    # a block the codec could not shrink is kept as it is (filter skipped)
                    (stored if mask else blocks).append(block)
        plain.append((copy, groups))

    def read_plain():
        for p, groups in plain:
            with h5py.File(p, "r") as h5:
                for g in groups:
                    h5[g][...]

    def decompress():
        for b in blocks:
            blosc2.decompress(b)  # reads the Blosc (v1) chunks the store writes
        for b in stored:
            bytes(b)

    sizes = [blosc2.get_cbuffer_sizes(b)[0] for b in blocks] + [len(b) for b in stored]
    buffer = np.empty(max(sizes), dtype=np.uint8)

    def codec_alone():
        for b in blocks:
            blosc2.decompress(b, dst=buffer)
        for b in stored:
            buffer[: len(b)] = np.frombuffer(b, np.uint8)

    return best_of(read_plain), best_of(decompress), best_of(codec_alone)


def measure(root: Path, work: Path, days: float) -> list[tuple[str, str, str]]:
    """The table's measured rows (store and file paths side by side, then the floors)."""
    t0, t1 = to_secs(START), to_secs(START) + days * DAY

    def hdr3(use_store):
        return aca_hdr3.MSID("ccd_temp_fine", t0, t1, data_root=root, use_store=use_store)

    fast = best_of(lambda: hdr3(True), 10)
    slow = best_of(lambda: hdr3(False), 2)
    n = int(np.count_nonzero(~np.ma.getmaskarray(hdr3(True).vals)))
    rows = [
        (f"MSID ccd_temp {days:g} d, file scan", f"{slow * 1000:.0f} ms", ""),
        (
            f"MSID ccd_temp {days:g} d, store ({n} samples)",
            f"{fast * 1000:.1f} ms",
            f"{slow / fast:.0f}x faster (>= 300x, < 30 ms)",
        ),
    ]
    plain, codec, alone = floors(
        [
            (path, ["TIME", *CCD_TEMP_FINE_BYTES[slot]])
            for slot in (6, 7)
            for path in chunk_paths(root, f"hd3/{slot}/", t0, t1)
        ],
        work,
    )
    rows += [
        ("  floor: same hdr3 bytes uncompressed", f"{plain * 1000:.1f} ms", ""),
        ("  floor: one codec decompression pass", f"{codec * 1000:.1f} ms", ""),
        ("  codec alone, into a reused buffer", f"{alone * 1000:.1f} ms", ""),
    ]

    slot = 0
    f_files = best_of(
        lambda: aca_l0.get_slot_data(t0, t1, slot, data_root=root, use_store=False), 1
    )
    f_store = best_of(lambda: aca_l0.get_slot_data(t0, t1, slot, data_root=root))
    rows += [
        (f"get_slot_data slot {slot} {days:g} d, files", f"{f_files * 1000:.0f} ms", ""),
        (
            f"get_slot_data slot {slot} {days:g} d, store",
            f"{f_store * 1000:.0f} ms",
            f"{f_files / f_store:.1f}x faster (>= 10x)",
        ),
    ]
    img_store = best_of(
        lambda: aca_l0.get_slot_data(t0, t1, slot, data_root=root, columns=["TIME", "IMGRAW"])
    )
    plain, codec, alone = floors(
        [(path, ["KEY", "IMGRAW"]) for path in chunk_paths(root, f"{slot}/", t0, t1)], work
    )
    rows += [
        (
            f"images slot {slot} {days:g} d, store",
            f"{img_store * 1000:.0f} ms",
            f"{img_store / codec:.2f}x codec floor (<= 2x)",
        ),
        ("  floor: same image bytes uncompressed", f"{plain * 1000:.0f} ms", ""),
        ("  floor: one codec decompression pass", f"{codec * 1000:.0f} ms", ""),
        (
            "  codec alone, into a reused buffer",
            f"{alone * 1000:.0f} ms",
            f"images {img_store / alone:.2f}x this",
        ),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=19.0)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep the archive already in --work")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mica-bench-"))
    upstream = work / "upstream"
    root = work / "aca0"
    tic = time.perf_counter()
    files = write_upstream(upstream, START, args.days)
    t_sim = time.perf_counter() - tic
    if args.reuse and (root / "store").is_dir():
        built = ("archive reused", "", f"{len(files)} files")
    else:
        shutil.rmtree(root, ignore_errors=True)
        t_ingest = ingest(upstream, root, START, args.days)
        built = ("simulate / ingest", f"{t_sim:.0f} s / {t_ingest:.0f} s", f"{len(files)} files")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        rows = [built, *fresh.submit(measure, root, work, args.days).result()]
    store_mb = sum(p.stat().st_size for p in (root / "store").rglob("*.h5")) / 1e6
    fits_mb = sum(p.stat().st_size for p in files) / 1e6
    rows.append(("store size vs FITS.gz", f"{store_mb:.0f} MB / {fits_mb:.0f} MB", ""))
    print_table(f"Columnar store, {args.days:g} days x 8 slots (work folder {work})", rows)
    (work / "bench_hdr3_store.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
