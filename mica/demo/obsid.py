"""The per-obsid part of `mica demo`: aspect L1 and obspar archives from the simulated upstream.

`demo_obsid` builds a small archive through the simulated upstream and runs the examples.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mica import config
from mica.engine.obsid_update import update_obsid_archive
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.sim.build import DOCS_WINDOW, L1_DECIMATE, quick_sim_source, update_obsid_window


@contextmanager
def _simulated_now(date: str | None) -> Iterator[None]:
    """Run with the simulated upstream as it was at ``date`` (``CXOTIME_NOW``)."""
    old = os.environ.get(config.NOW)
    if date is not None:
        os.environ[config.NOW] = date
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(config.NOW, None)
        else:
            os.environ[config.NOW] = old


#: obsids the demo archives: the user examples plus obsids of 2012:001-003 for time queries
DEMO_OBSPARS = [7000, 7001, 5438, 6000, 2121]
DEMO_ASP_OBSIDS = [6000, 2121]
DEMO_WINDOW = ("2012:001:00:00:00", "2012:002:00:00:00")


def demo_obsid(archive_root: Path, progress: Callable[[str], Any] | None = None) -> list[str]:
    """Update a handful of obsids from the simulated upstream and run the examples.

    Obsid 6000 is updated twice, as the archive would have been in 2010 (revision 2 was the
    default) and today (revision 3), so it shows both revision folders. The simulated
    aspect products keep every 4th sample (`mica.sim.build.quick_sim_source`: unless
    ``MICA_SIM_L1_DECIMATE`` is set) so the demo takes seconds, not a minute. Returns the
    lines to print.
    """
    root = Path(archive_root)
    lines: list[str] = []
    t0 = time.perf_counter()
    _build_demo(root, lines, progress)
    decimate = config.sim_l1_decimate(default=L1_DECIMATE)
    lines.append(
        f"(archive built in {time.perf_counter() - t0:.1f} s; simulated aspect "
        f"products keep every {decimate}th sample: MICA_SIM_L1_DECIMATE)"
    )
    return lines + _demo_examples(root)


def _build_demo(root: Path, lines: list[str], progress: Callable[[str], Any] | None) -> None:
    source = quick_sim_source()
    with _simulated_now("2010:001"):
        report = update_obsid_archive(ASP_L1, source, [6000], data_root=root / "asp1")
    lines.append(f"update asp-l1 --obsid 6000 as of 2010:001: {report.done.get(6000)}")
    for product, kwargs in (
        (ASP_L1, {"obsids": DEMO_ASP_OBSIDS}),
        (OBSPAR, {"obsids": DEMO_OBSPARS}),
        (ASP_L1, {"start": DEMO_WINDOW[0], "stop": DEMO_WINDOW[1]}),
        (OBSPAR, {"start": DEMO_WINDOW[0], "stop": DEMO_WINDOW[1]}),
    ):
        report = update_obsid_archive(product, source, data_root=root / product.subdir, **kwargs)
        lines.append(f"update {product.name} {kwargs}: " + report.summary().splitlines()[0])
        if progress:
            progress(lines[-1])
    lines += update_obsid_window(root, *DOCS_WINDOW)


def _demo_examples(root: Path) -> list[str]:
    """The user examples on the demo archive, one line each."""
    from mica.archive import aca_l0, asp_l1, obspar

    lines: list[str] = []
    asp1, obsp = root / "asp1", root / "obspar"
    lines.append(f"asp_l1.get_dir(2121) = {asp_l1.get_dir(2121, data_root=asp1)}")
    dirs = asp_l1.get_obs_dirs(6000, data_root=asp1)
    lines.append(f"asp_l1.get_obs_dirs(6000) = {_short(dirs, root)}")
    lines.append(
        f"asp_l1.get_obs_dirs(2121) revisions {asp_l1.get_obs_dirs(2121, asp1)['revisions']}"
        f", default {_short(asp_l1.get_dir(2121, asp1), root)}, last "
        f"{_short(asp_l1.get_obs_dirs(2121, asp1)['last'], root)}"
    )
    files = asp_l1.get_files(6000, data_root=asp1)
    lines.append(f"asp_l1.get_files(6000): {len(files)} files, e.g. {Path(files[0]).name}")
    gs = asp_l1.get_files(6000, content=["GSPROPS"], data_root=asp1)
    lines.append(f"asp_l1.get_files(6000, content=['GSPROPS']): {[Path(f).name for f in gs]}")
    fid = asp_l1.get_files(start="2012:001", stop="2012:030", content=["FIDPROPS"], data_root=asp1)
    lines.append(
        f"asp_l1.get_files(start='2012:001', stop='2012:030', content=['FIDPROPS']): "
        f"{len(fid)} files (the demo archived 2012:001)"
    )
    par7000 = obspar.get_obspar_file(7000, data_root=obsp)
    lines.append(f"obspar.get_obspar_file(7000) = {_short(par7000, root)}")
    lines.append(
        f"obspar.get_obspar(7001)['detector'] = "
        f"{obspar.get_obspar(7001, data_root=obsp)['detector']!r}"
    )
    pars = obspar.get_files(start="2012:001", stop="2012:030", data_root=obsp)
    lines.append(f"obspar.get_files(start='2012:001', stop='2012:030'): {len(pars)} files")
    start, stop = obspar.obsid_interval(5438, data_root=obsp)
    l0 = aca_l0.get_files(obsid=5438)
    lines.append(
        f"aca_l0.get_files(obsid=5438): interval {start:.0f}-{stop:.0f} from the "
        f"obspar archive, {len(l0)} L0 files archived"
    )
    lines.append(f"asp_l1.get_dir(3) = {asp_l1.get_dir(3, data_root=asp1)} (nothing archived)")
    return lines


def _short(value: Any, root: Path) -> Any:
    """Paths relative to the archive root, for readable demo output."""
    if isinstance(value, str):
        return value.replace(str(root) + os.sep, "")
    if isinstance(value, dict):
        return {k: _short(v, root) for k, v in value.items()}
    return value
