"""`mica demo`: build a small archive from the simulated upstream, run the examples, plot.

The package is the demo's presentation: `run_demo` (the command's entry point), the L0 and
header-3 plots and examples here, one module per other part (`mica.demo.obsid`,
`mica.demo.dark`, `mica.demo.acq`, `mica.demo.vv`, `mica.demo.sync`). The archive itself is
built by the simulator's build helpers (`mica.sim.build`), which also build the
documentation's archive.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import matplotlib

# The demo writes PNG files, no screen needed; the package runs before any of its modules,
# so this is the one place the backend is set.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from mica import config  # noqa: E402
from mica.archive import aca_hdr3, aca_l0  # noqa: E402
from mica.demo.dark import demo_dark  # noqa: E402
from mica.demo.obsid import demo_obsid  # noqa: E402
from mica.engine.time_update import update_archive  # noqa: E402
from mica.plot import archive_is_simulated, plot_cxctime, save_figure  # noqa: E402
from mica.products.aca_l0 import L0  # noqa: E402
from mica.progress import progress_bar  # noqa: E402
from mica.sim.build import (  # noqa: E402  (build_docs_archive: the name the docs use)
    DOCS_L0_WINDOW,
    DOCS_WINDOW,
    archive_hdr3_window,
    build_docs_archive,
    derive_products,
)
from mica.time import to_date  # noqa: E402

__all__ = [
    "run_demo",
    "build_docs_archive",
    "DOCS_WINDOW",
    "DOCS_L0_WINDOW",
    "HDR3_WINDOW",
    "plot_tempccd",
    "plot_image_grid",
    "plot_hdr3",
    "run_examples",
]

# The windows the examples read; the demo archive holds just these (and the documentation's).
L0_WINDOWS = [
    ("2011:001:00:00:00", "2011:001:12:00:00"),
    ("2012:001:00:00:00", "2012:002:00:00:00"),
    (98585849 - 600, 98585884 + 600),
    ("2012:270:02:00:00", "2012:270:03:00:00"),
    DOCS_L0_WINDOW,
]
# Ten days around perigee passes, when guide slots 6-7 run 8x8 and carry ccd_temp and dac.
HDR3_WINDOW = ("2012:125:00:00:00", "2012:135:00:00:00")


def _say(line: str) -> None:
    print(line, flush=True)


def build_l0(root: Path, progress: bool) -> None:
    """Fill ``root/aca0`` from the simulated upstream through the real ingest path."""
    from mica.sim.mission import default_mission

    obs = default_mission().observation(5438)
    for start, stop in [(obs.tstart, obs.tstop), *L0_WINDOWS]:
        t0 = time.perf_counter()
        with progress_bar("update aca-l0", enabled=progress) as bar:
            report = update_archive(L0, "sim", start, stop, data_root=root / "aca0", progress=bar)
        _say(f"  {report.summary().splitlines()[0]} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    report = archive_hdr3_window(root, *HDR3_WINDOW, progress=progress)
    _say(f"  {report.summary().splitlines()[0]} ({time.perf_counter() - t0:.1f} s)")


def plot_tempccd(
    root: Path,
    out: Path,
    window: tuple[str, str] = ("2012:001:00:00:00.000", "2012:002:00:00:00.000"),
    keep: list | None = None,
) -> Path:
    """TEMPCCD of slot 0 on 2012:001 from the files directly and from get_slot_data."""
    start, stop = window
    files = aca_l0.get_files(start=start, stop=stop, slots=[0], imgsize=[6, 8])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for path in files:
        with fits.open(path) as hdus:
            data = hdus[1].data
            plot_cxctime(data["TIME"], data["TEMPCCD"] - 273.15, ".", ax=ax1, ms=1)
    ax1.set_title(f"slot 0 TEMPCCD read file by file ({len(files)} files, one colour each)")
    data = aca_l0.get_slot_data(start, stop, slot=0, imgsize=[6, 8], columns=["TIME", "TEMPCCD"])
    plot_cxctime(data["TIME"], data["TEMPCCD"] - 273.15, ".r", ax=ax2, ms=1)
    ax2.set_title(f"the same from get_slot_data ({len(data)} rows)")
    ax1.set_xlabel("")  # shared axis: one x label, under the lower panel
    for ax in (ax1, ax2):
        ax.set_ylabel("TEMPCCD (degC)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"ACA CCD temperature (L0 TEMPCCD), slot 0, {start[:8]}")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = out / f"tempccd_{start[:8].replace(':', '_')}.png"
    return save_figure(fig, path, archive_is_simulated(root), keep)


def plot_image_grid(
    root: Path,
    out: Path,
    window: tuple[str, str] = ("2012:001:01:00:00", "2012:001:03:00:00"),
    keep: list | None = None,
) -> Path:
    """24 consecutive 8x8 readouts of a fid slot on one colour scale, with a colour bar."""
    images = aca_l0.get_l0_images(*window, slot=0, imgsize=[8])
    images = images[:24]
    fig, axes = plt.subplots(4, 6, figsize=(11, 8))
    # One colour scale for every panel, so panels compare by eye.
    stack = np.ma.array([np.ma.asarray(img) for img in images]) if images else np.zeros((1, 8, 8))
    vmin, vmax = float(np.ma.min(stack)), float(np.ma.max(stack))
    shown = None
    for ax, img in zip(axes.flat, images):
        shown = ax.imshow(np.asarray(img), origin="lower", cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(f"{to_date(img.TIME)[9:]}\nrow0={img.row0} col0={img.col0}", fontsize=7)
        # pixel ticks on every panel, numbered on the grid's outer edges only
        ax.set_xticks(range(0, 8, 2))
        ax.set_yticks(range(0, 8, 2))
        ax.tick_params(labelsize=7)
        ax.label_outer()
    for ax in list(axes.flat)[len(images) :]:
        ax.axis("off")
    axes[-1, 0].set_xlabel("column (pixels)", fontsize=8)
    axes[-1, 0].set_ylabel("row (pixels)", fontsize=8)
    if shown is not None:
        fig.colorbar(shown, ax=list(axes.flat), shrink=0.8, label="pixel value (DN)")
    day = to_date(images[0].TIME)[:8] if images else "2012:001"
    fig.suptitle(f"slot 0 8x8 readouts from get_l0_images, {day} (UTC hh:mm:ss), one colour scale")
    return save_figure(fig, out / "slot0_8x8_readouts.png", archive_is_simulated(root), keep)


def plot_hdr3(
    root: Path, out: Path, window: tuple[str, str] = HDR3_WINDOW, keep: list | None = None
) -> list[Path]:
    """Two header-3 plots: ccd_temp over days, dac against aca_temp - ccd_temp."""
    start, stop = window
    simulated = archive_is_simulated(root)
    msids = aca_hdr3.MSIDset(["ccd_temp", "aca_temp", "dac"], start, stop)
    ccd = msids["ccd_temp"]
    good = ~np.ma.getmaskarray(ccd.vals)
    fig, ax = plt.subplots(figsize=(10, 4))
    plot_cxctime(ccd.times[good], ccd.vals[good], ".", ax=ax, ms=1)
    ax.set_ylabel("ccd_temp (degC)")
    ax.set_title(f"header-3 ccd_temp, {start[:8]} to {stop[:8]} ({good.sum()} samples)")
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path1 = save_figure(fig, out / "hdr3_ccd_temp.png", simulated, keep)

    diff = msids["aca_temp"].vals - ccd.vals
    dac = msids["dac"].vals
    ok = ~(np.ma.getmaskarray(diff) | np.ma.getmaskarray(dac))
    x, y = np.asarray(diff[ok], dtype=float), np.asarray(dac[ok], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if len(y):
        # DAC is an integer count: one bin per value, so the density is per DAC step.
        y_edges = np.arange(np.floor(y.min()) - 0.5, np.ceil(y.max()) + 1.5, 1.0)
        x_edges = np.linspace(x.min(), x.max() + 1e-9, 60)
        _, _, _, mesh = ax.hist2d(x, y, bins=[x_edges, y_edges], cmap="viridis", cmin=1)
        fig.colorbar(mesh, ax=ax, label="samples per bin")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("aca_temp - ccd_temp (degC)")
    ax.set_ylabel("TEC dac (counts)")
    ax.set_title(f"dac vs temperature difference, {start[:8]} to {stop[:8]} ({len(y)} samples)")
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path2 = save_figure(fig, out / "hdr3_dac_vs_dtemp.png", simulated, keep)
    return [path1, path2]


def run_examples() -> list[str]:
    """The user examples of the L0 archive, with a line of what each returned."""
    lines = []
    obsid_files = aca_l0.get_files(obsid=5438)
    lines.append(f"get_files(obsid=5438): {len(obsid_files)} files")
    time_8x8 = aca_l0.get_files(start="2011:001", stop="2011:010", imgsize=[8])
    lines.append(f"get_files(2011:001-010, imgsize=[8]): {len(time_8x8)} files")
    time_files = aca_l0.get_files(
        start="2012:001:00:00:00.000", stop="2012:002:00:00:00.000", slots=[0], imgsize=[6, 8]
    )
    lines.append(f"get_files(2012:001-002, slot 0, 6x6/8x8): {len(time_files)} files")
    temp_ccd = aca_l0.get_slot_data(
        "2012:001:00:00:00.000",
        "2012:002:00:00:00.000",
        slot=0,
        imgsize=[6, 8],
        columns=["TIME", "TEMPCCD"],
    )
    lines.append(
        f"get_slot_data TEMPCCD slot 0: {len(temp_ccd)} rows, "
        f"median {np.ma.median(temp_ccd['TEMPCCD']) - 273.15:.1f} C"
    )
    slot_data = aca_l0.get_slot_data(98585849, 98585884, slot=2)
    lines.append(
        f"get_slot_data(98585849, 98585884, slot=2): {len(slot_data)} rows, "
        f"{len(slot_data.dtype.names)} columns"
    )
    images = aca_l0.get_l0_images(98585849, 98585884, slot=2)
    if images:
        lines.append(
            f"get_l0_images: {len(images)} images, first {images[0].shape} at "
            f"row0={images[0].row0} col0={images[0].col0}"
        )
    else:
        lines.append("get_l0_images: 0 images")
    table = aca_l0.get_aca_images("2012:270:02:25:00", "2012:270:02:46:00")
    sizes = sorted(set(np.asarray(table["IMGSIZE"]).tolist())) if len(table) else []
    lines.append(f"get_aca_images(2012:270:02:25-02:46): {len(table)} rows, sizes {sizes}")
    for use_store, label in ((True, "store"), (False, "file scan")):
        tic = time.perf_counter()
        ccd_temp = aca_hdr3.MSID("ccd_temp", *HDR3_WINDOW, use_store=use_store)
        good = int(np.count_nonzero(~np.ma.getmaskarray(ccd_temp.vals)))
        lines.append(
            f"aca_hdr3.MSID('ccd_temp', 10 days) from the {label}: {good} samples, "
            f"median {np.ma.median(ccd_temp.vals):.2f} C, "
            f"{(time.perf_counter() - tic) * 1000:.0f} ms"
        )
    return lines


def run_demo(out: Path, progress: bool = True) -> None:
    """Build the demo archive in ``out/archive`` and write plots into ``out``."""
    out = out.resolve()
    root = out / "archive"
    out.mkdir(parents=True, exist_ok=True)
    os.environ[config.ARCHIVE] = str(root)
    t0 = time.perf_counter()
    _say(f"Building the demo archive in {root} from the simulated Chandra ...")
    build_l0(root, progress)
    _say(f"L0 archive built in {time.perf_counter() - t0:.1f} s. Per-obsid archives:")
    for line in demo_obsid(root):
        _say("  " + line)
    _say("Running the L0 and header-3 examples:")
    for line in run_examples():
        _say("  " + line)
    _say("Dark calibrations:")
    for line in demo_dark(root, out, progress):
        _say("  " + line)
    _say("Derived products (acquisition statistics, aspect solution V&V):")
    for line in derive_products(root):
        _say("  " + line)
    from mica.demo.acq import demo_acq
    from mica.demo.sync import demo_sync
    from mica.demo.vv import demo_vv

    _say("Publish and sync (the header-3 views into a second archive, over loopback HTTP):")
    for line in demo_sync(root, out, HDR3_WINDOW):
        _say("  " + line)

    plots = [plot_tempccd(root, out), plot_image_grid(root, out), *plot_hdr3(root, out)]
    plots += demo_acq(root, out, every=80)
    plots += demo_vv(root, out)
    _say("Plots written:")
    for path in plots:
        _say(f"  {path}")
    for line in closing_lines(root, time.perf_counter() - t0):
        _say(line)


def disk_usage(path: Path) -> int:
    """Bytes on disk of the files under ``path`` (allocated blocks, as ``du`` counts)."""
    return sum(p.lstat().st_blocks * 512 for p in Path(path).rglob("*") if p.is_file())


def closing_lines(root: Path, seconds: float) -> list[str]:
    """The demo's last lines: the archive it built and how to point later commands at it."""
    return [
        "",
        f"Demo archive: {root} ({disk_usage(root) / 1e6:.0f} MB, built in {seconds:.0f} s)",
        "Point later `mica` commands and Python sessions at it with:",
        f"  export MICA_ARCHIVE={shlex.quote(str(root))}",
    ]
