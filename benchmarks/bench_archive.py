"""Shared by the benchmarks: a simulated upstream folder and an archive built from it."""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

from astropy.io import fits

try:
    from mica.engine.time_update import update_archive
except ImportError:  # a --before checkout from before the engine's modules were split
    from mica.engine.update import update_archive
from mica.products.aca_l0 import L0
from mica.time import to_secs

DAY = 86400.0


def write_upstream(folder: Path, start: str, days: float) -> list[Path]:
    """Simulated L0 files of ``days`` days from ``start`` (reused when already written)."""
    from mica.sim.aca_l0 import plan_l0_files, write_l0_file

    folder.mkdir(parents=True, exist_ok=True)
    t0 = to_secs(start)
    plans = plan_l0_files(t0, t0 + days * DAY)
    out = []
    for plan in plans:
        path = folder / plan.filename
        if not path.exists():
            write_l0_file(plan, folder)
        out.append(path)
    return out


def ingest(upstream: Path, root: Path, start: str, days: float) -> float:
    """Seconds to ingest the upstream folder into a new archive at ``root``."""
    t0 = to_secs(start)
    tic = time.perf_counter()
    update_archive(L0, f"dir:{upstream}", t0, t0 + days * DAY, data_root=root)
    return time.perf_counter() - tic


def bare_read(paths: list[Path], columns: list[str] | None = None) -> float:
    """Seconds to decompress and read every column (or ``columns``) of the files."""
    tic = time.perf_counter()
    for path in paths:
        raw = gzip.decompress(path.read_bytes())
        with fits.open(io.BytesIO(raw), memmap=False) as hdus:
            data = hdus[1].data
            for name in columns or data.columns.names:
                data[name].copy()
    return time.perf_counter() - tic


def best_of(func, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (s)."""
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        func()
        times.append(time.perf_counter() - tic)
    return min(times)


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    print(f"{'measure':<{width}}  {'figure':>16}  {'ratio / target':>28}")
    for name, fig, ratio in rows:
        print(f"{name:<{width}}  {fig:>16}  {ratio:>28}")
