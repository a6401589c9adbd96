"""`mica demo`: build a small archive from the simulated upstream, run the examples, plot."""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the demo writes PNG files; no screen needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from mica.archive import aca_hdr3, aca_l0  # noqa: E402
from mica.demo_dark import demo_dark  # noqa: E402
from mica.demo_obsid import demo_obsid  # noqa: E402
from mica.engine.update import update_archive  # noqa: E402
from mica.plot import plot_cxctime  # noqa: E402
from mica.products.aca_l0 import L0  # noqa: E402
from mica.progress import progress_bar  # noqa: E402

# The windows the examples read; the demo archive holds just these.
L0_WINDOWS = [
    ("2011:001:00:00:00", "2011:001:12:00:00"),
    ("2012:001:00:00:00", "2012:002:00:00:00"),
    (98585849 - 600, 98585884 + 600),
    ("2012:270:02:00:00", "2012:270:03:00:00"),
]


def _say(line: str) -> None:
    print(line, flush=True)


def build_l0(root: Path, progress: bool) -> None:
    """Fill ``root/aca0`` from the simulated upstream through the real ingest path."""
    from mica.sim.mission import default_mission

    obs = default_mission().observation(5438)
    for start, stop in [(obs.tstart, obs.tstop), *L0_WINDOWS, HDR3_WINDOW]:
        t0 = time.perf_counter()
        with progress_bar("update aca-l0", enabled=progress) as bar:
            report = update_archive(L0, "sim", start, stop, data_root=root / "aca0", progress=bar)
        _say(f"  {report.summary().splitlines()[0]} ({time.perf_counter() - t0:.1f} s)")


def plot_tempccd(root: Path, out: Path) -> Path:
    """TEMPCCD of slot 0 on 2012:001 from the files directly and from get_slot_data."""
    start, stop = "2012:001:00:00:00.000", "2012:002:00:00:00.000"
    files = aca_l0.get_files(start=start, stop=stop, slots=[0], imgsize=[6, 8])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for path in files:
        with fits.open(path) as hdus:
            data = hdus[1].data
            plot_cxctime(data["TIME"], data["TEMPCCD"] - 273.15, ".", ax=ax1, ms=1)
    ax1.set_title(f"slot 0 TEMPCCD read file by file ({len(files)} files)")
    data = aca_l0.get_slot_data(start, stop, slot=0, imgsize=[6, 8], columns=["TIME", "TEMPCCD"])
    plot_cxctime(data["TIME"], data["TEMPCCD"] - 273.15, ".r", ax=ax2, ms=1)
    ax2.set_title(f"the same from get_slot_data ({len(data)} rows)")
    for ax in (ax1, ax2):
        ax.set_ylabel("TEMPCCD (degC)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "tempccd_2012_001.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_image_grid(out: Path) -> Path:
    """24 consecutive 8x8 readouts of a fid slot as an image grid."""
    images = aca_l0.get_l0_images("2012:001:01:00:00", "2012:001:03:00:00", slot=0, imgsize=[8])
    images = images[:24]
    fig, axes = plt.subplots(4, 6, figsize=(10, 7))
    for ax, img in zip(axes.flat, images):
        ax.imshow(np.asarray(img), origin="lower", cmap="viridis")
        ax.set_title(
            f"t={img.TIME - images[0].TIME:.1f}s\nrow0={img.row0} col0={img.col0}", fontsize=7
        )
        ax.axis("off")
    for ax in list(axes.flat)[len(images) :]:
        ax.axis("off")
    fig.suptitle("slot 0, 8x8 readouts from get_l0_images (DN)")
    fig.tight_layout()
    path = out / "slot0_8x8_readouts.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# Ten days around perigee passes, when guide slots 5-7 run 8x8 and carry ccd_temp and dac.
HDR3_WINDOW = ("2012:125:00:00:00", "2012:135:00:00:00")


def plot_hdr3(out: Path) -> list[Path]:
    """The seed's two header-3 plots: ccd_temp over days, dac against aca_temp - ccd_temp."""
    start, stop = HDR3_WINDOW
    msids = aca_hdr3.MSIDset(["ccd_temp", "aca_temp", "dac"], start, stop)
    ccd = msids["ccd_temp"]
    good = ~np.ma.getmaskarray(ccd.vals)
    fig, ax = plt.subplots(figsize=(10, 4))
    plot_cxctime(ccd.times[good], ccd.vals[good], ".", ax=ax, ms=1)
    ax.set_ylabel("ccd_temp (degC)")
    ax.set_title(f"header-3 ccd_temp, {start[:8]} to {stop[:8]} ({good.sum()} samples)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path1 = out / "hdr3_ccd_temp.png"
    fig.savefig(path1, dpi=90)
    plt.close(fig)

    diff = msids["aca_temp"].vals - ccd.vals
    dac = msids["dac"].vals
    ok = ~(np.ma.getmaskarray(diff) | np.ma.getmaskarray(dac))
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot(diff[ok], dac[ok], ".", ms=2)
    ax.set_xlabel("aca_temp - ccd_temp (degC)")
    ax.set_ylabel("TEC dac (counts)")
    ax.set_title(f"dac vs temperature difference, {start[:8]} to {stop[:8]}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path2 = out / "hdr3_dac_vs_dtemp.png"
    fig.savefig(path2, dpi=90)
    plt.close(fig)
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
    os.environ["MICA_ARCHIVE"] = str(root)
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
    plots = [plot_tempccd(root, out), plot_image_grid(out), *plot_hdr3(out)]
    _say("Plots written:")
    for path in plots:
        _say(f"  {path}")
