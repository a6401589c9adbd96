"""L0 archive: ingest rate and get_slot_data beside the bare decompress-and-read of the same files.

    python benchmarks/bench_l0.py --days 2 [--work DIR]

Builds a bench archive of N days x 8 slots from the simulated upstream (through the dir:
source, i.e. the real ingest path) and prints one table. Targets: get_slot_data
within 1.5x of the bare read; ingest at least half of the bare read rate.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench_archive import DAY, bare_read, best_of, ingest, print_table, write_upstream

from mica.archive import aca_l0
from mica.time import to_secs

START = "2012:001:00:00:00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mica-bench-"))
    upstream = work / "upstream"
    files = write_upstream(upstream, START, args.days)
    mb = sum(p.stat().st_size for p in files) / 1e6
    root = work / "aca0"
    shutil.rmtree(root, ignore_errors=True)
    t_ingest = ingest(upstream, root, START, args.days)
    t_bare = bare_read(files)
    rows = [
        ("files / compressed MB", f"{len(files)} / {mb:.0f}", ""),
        ("bare decompress+read", f"{len(files) / t_bare:.0f} files/s", f"{mb / t_bare:.1f} MB/s"),
        (
            "ingest (validate+place+index+store)",
            f"{len(files) / t_ingest:.0f} files/s",
            f"{mb / t_ingest:.1f} MB/s = {t_bare / t_ingest:.2f}x bare (>= 0.5)",
        ),
    ]
    t0 = to_secs(START) + DAY * min(1.0, args.days - 1) if args.days > 1 else to_secs(START)
    t1 = t0 + DAY
    for slots in ([0], list(range(8))):
        recs = [r for s in slots for r in aca_l0._get_file_records(t0, t1, [s], None, root)]
        paths = [aca_l0.L0.path(r, root) for r in recs]
        bare = best_of(lambda paths=paths: bare_read(paths))
        for label, use_store in (("files", False), ("store", True)):

            def read(slots=slots, use_store=use_store):
                for s in slots:
                    aca_l0.get_slot_data(t0, t1, s, data_root=root, use_store=use_store)

            t = best_of(read)
            target = "(<= 1.5x)" if not use_store else ""
            rows.append(
                (
                    f"get_slot_data 1 day x {len(slots)} slot(s), {label}",
                    f"{t * 1000:.0f} ms",
                    f"{t / bare:.2f}x bare {target}",
                )
            )
        rows.append((f"bare read of the same {len(paths)} files", f"{bare * 1000:.0f} ms", "1.00x"))
    print_table(f"L0 archive, {args.days:g} days x 8 slots (work folder {work})", rows)


if __name__ == "__main__":
    main()
