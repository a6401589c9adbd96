"""L0 ingest beside the bare astropy read of the same files, on one worker.

    python benchmarks/bench_ingest.py [--hours 6] [--rounds 3] [--work DIR]
        [--before /work/main]

Files: simulated L0 files of ``--hours`` hours (8 slots, written through the simulator) and
the 36 real 2003 files of ``tests/data``, each set in its own archive (an archive holds one
kind). Per set, each figure comes from a fresh process (``--child``), the measures run in
turn round after round (interleaved) and the best round counts:

- ``bare``: decompress and read every column with astropy (the issue's peer);
- ``ingest``: ``update_archive`` with a ``dir:`` source into a new archive (what ``mica
  update`` runs: validate, place, index, store), ``MICA_WORKERS=1``;
- ``astropy``: validation alone through astropy (open, describe, store arrays);
- ``fast``: validation alone through `mica.engine.describe.describe_fits` (the
  `mica.engine.fastfits` path).

Prints each figure, the ratios and the target: ingest rate >= 1.5x the bare read rate.
With ``--before``, ``ingest`` and ``fast`` (there: its ``describe_fits``, or ``L0.describe_path``
in a checkout from before `mica.engine.describe`) also run against
another checkout (its own ``.venv``), interleaved, for the "nothing gets slower" table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REAL = HERE.parents[1] / "tests" / "data" / "aca_l0_2003"
START = "2012:001:00:00:00"
MEASURES = ["bare", "ingest", "astropy", "fast"]
TARGET = 1.5


def sim_folder(work: Path, hours: float) -> Path:
    return work / f"sim-{hours:g}h"


def files(args: argparse.Namespace, kind: str) -> list[Path]:
    folder = REAL if kind == "real" else sim_folder(args.work, args.hours)
    return sorted(folder.glob("acaf*.fits.gz"))


def validate_astropy(paths: list[Path]) -> None:
    """The astropy reading of `describe_fits`: checked open, describe, store arrays."""
    from mica.engine.describe import finish_row
    from mica.engine.fitscheck import open_raw, read_bytes
    from mica.products.aca_l0 import L0

    for path in paths:
        hdus, checksum = open_raw(read_bytes(path, path.name), path.name, L0.extname)
        with hdus:
            row = L0.describe(path.name, hdus)
            finish_row(row, checksum, hdus[0].header)
            L0.store_arrays(hdus, row)


def validate_fast(paths: list[Path]) -> None:
    from mica.products.aca_l0 import L0

    try:
        from mica.engine.describe import describe_fits
    except ImportError:  # a --before checkout, where the product read its own files

        def describe_fits(product: object, name: str, path: Path, arrays: dict) -> dict:
            return product.describe_path(name, path, arrays)

    for path in paths:
        describe_fits(L0, path.name, path, {})


def ingest(paths: list[Path], work: Path) -> float:
    from bench_archive import update_archive  # where this checkout's mica keeps it

    from mica.products.aca_l0 import L0

    times = [L0.name_time(p.name) for p in paths]
    out = Path(tempfile.mkdtemp(dir=work, prefix="ingest-"))
    try:
        tic = time.perf_counter()
        report = update_archive(
            L0, f"dir:{paths[0].parent}", min(times) - 10, max(times) + 10, data_root=out
        )
        secs = time.perf_counter() - tic
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(report.ingested) != len(paths) or report.rejected:
        raise SystemExit(f"ingest: {report.summary()}")
    return secs


def child(name: str, args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from bench_archive import bare_read, best_of

    paths = files(args, args.kind)
    if name == "ingest":
        return {"s": ingest(paths, args.work)}
    func = {
        "bare": lambda: bare_read(paths),
        "astropy": lambda: validate_astropy(paths),
        "fast": lambda: validate_fast(paths),
    }[name]
    func()  # warm: imports and the page cache, as for ingest's worker
    return {"s": best_of(func, args.repeat)}


def run_child(
    name: str, kind: str, args: argparse.Namespace, python: str = sys.executable
) -> float:
    cmd = [python, str(HERE), "--child", name, "--kind", kind, "--work", str(args.work)]
    cmd += ["--hours", str(args.hours), "--repeat", str(args.repeat)]
    env = {**os.environ, "MICA_WORKERS": "1"}  # ingest on one worker
    # run from / so the interpreter's own checkout provides mica, not the current folder
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, cwd="/")
    if proc.returncode:
        raise SystemExit(f"{name} {kind}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["s"]


def measure(args: argparse.Namespace) -> dict[tuple[str, str], float]:
    """Best seconds per (kind, measure) over interleaved rounds of fresh processes."""
    fig: dict[tuple[str, str], float] = {}
    before = str(args.before / ".venv" / "bin" / "python") if args.before else None
    for _ in range(args.rounds):
        for kind in ("sim", "real"):
            for name in MEASURES:
                runs = [(name, sys.executable)]  # this checkout
                if before and name in ("ingest", "fast"):
                    runs.append((f"before {name}", before))
                for key, python in runs:
                    secs = run_child(name, kind, args, python)
                    fig[kind, key] = min(fig.get((kind, key), float("inf")), secs)
    return fig


def report(fig: dict[tuple[str, str], float], args: argparse.Namespace) -> bool:
    """Print the table; True when the ingest target holds for every set and in total."""
    counts = {kind: len(files(args, kind)) for kind in ("sim", "real")}
    names = {name for _, name in fig}
    fig.update({("all", name): fig["sim", name] + fig["real", name] for name in names})
    counts["all"] = counts["sim"] + counts["real"]
    print(f"\nL0 ingest on one worker ({args.rounds} interleaved rounds, fresh processes, best)")
    print(f"load: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    print(
        f"{'files':<12} {'bare read':>10} {'ingest':>10} {'rate ratio':>11} {'target':>7}"
        f" {'holds':>5}   {'astropy val.':>12} {'fast val.':>10} {'speed-up':>8}"
    )
    ok = True
    for kind in ("sim", "real", "all"):
        bare, ing, ast, fast = (fig[kind, n] for n in MEASURES)
        ratio = bare / ing  # ingest rate over bare-read rate for the same files
        ok &= ratio >= TARGET
        label = f"{kind} ({counts[kind]})"
        print(
            f"{label:<12} {bare:>9.2f}s {ing:>9.2f}s {ratio:>10.2f}x {TARGET:>6}x"
            f" {'yes' if ratio >= TARGET else 'NO':>5}   {ast:>11.2f}s {fast:>9.2f}s"
            f" {ast / fast:>7.1f}x"
        )
    if "before ingest" in names:
        print(f"\nbefore ({args.before}) -> now, same rounds")
        for kind in ("sim", "real", "all"):
            for name, label in (("ingest", "ingest"), ("fast", "describe_fits")):
                b, n = fig[kind, f"before {name}"], fig[kind, name]
                print(f"{kind:<5} {label:<14} {b:>7.2f}s -> {n:>6.2f}s  {n / b:.2f}x")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="calls per child, best counts")
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "mica-bench-ingest"
    )
    parser.add_argument("--before", type=Path, default=None, help="another checkout (with .venv)")
    parser.add_argument("--child", default=None)
    parser.add_argument("--kind", default="sim")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    sys.path.insert(0, str(HERE.parent))
    from bench_archive import write_upstream

    args.work.mkdir(parents=True, exist_ok=True)
    write_upstream(sim_folder(args.work, args.hours), START, args.hours / 24)
    report(measure(args), args)


if __name__ == "__main__":
    main()
