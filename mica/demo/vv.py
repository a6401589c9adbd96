"""`mica demo`'s V&V part: one report of an observation with a seeded fault."""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_FAULT = "bad_star"  # a guide star with bad centroids: BAD, "reprocess without that star"


def seeded_fault_obsid() -> int:
    """The first obsid of 2005-2012 seeded with `DEMO_FAULT` (deterministic)."""
    from mica.sim import asp_l1 as sim
    from mica.sim.mission import default_mission

    for obs in default_mission().observations("2005:001", "2013:001"):
        if sim.seeded_problem(obs.obsid) == DEMO_FAULT:
            return obs.obsid
    raise RuntimeError(f"the simulated mission has no {DEMO_FAULT} obsid in 2005-2012")


def demo_vv(data_root: Path, out: Path) -> list[Path]:
    """Archive one faulty obsid, V&V it with ``mica update vv``, print its disposition.

    Parameters
    ----------
    data_root : Path
        The archive root (``asp1``, ``obspar`` and ``vv`` are filled in it).
    out : Path
        Where the report folder is copied (``out/vv_<obsid>/report.html`` and its plots).

    Returns
    -------
    list of Path
        The copied ``report.html`` and the faulty slot's plot.
    """
    from mica.engine.derived import update_derived
    from mica.engine.obsid_update import update_obsid_archive
    from mica.products.asp_l1 import ASP_L1
    from mica.products.obspar import OBSPAR
    from mica.sim import asp_l1 as sim
    from mica.sim.build import quick_sim_source
    from mica.vv import get_vv, get_vv_dir
    from mica.vv.product import VV

    root, out = Path(data_root), Path(out)
    obsid = seeded_fault_obsid()
    source = quick_sim_source()  # every 4th aspect sample: seconds, not a minute
    for product in (ASP_L1, OBSPAR):
        report = update_obsid_archive(product, source, [obsid], data_root=root / product.subdir)
        if not report.ok:
            raise RuntimeError(report.summary())
    report = update_derived(VV, data_root=root / VV.folder, obsids=[obsid], archive=root)
    if not report.ok:
        raise RuntimeError(report.summary())
    vv_root = root / VV.folder
    info = get_vv(obsid, data_root=vv_root)
    disp = info["disposition"]
    truth = sim.ground_truth(obsid)
    print(f"V&V of obsid {obsid} revision {info['revision']} (seeded: {truth['fault']} in slot "
          f"{truth['slot']}): {disp['status']}")  # fmt: skip
    for reason in disp["reasons"]:
        print(f"  {reason}")
    dest = out / f"vv_{obsid}"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(get_vv_dir(obsid, data_root=vv_root), dest)
    paths = [dest / "report.html"]
    slot = disp["repro_without"] if disp["repro_without"] is not None else truth["slot"]
    if slot is not None and (dest / f"slot_{slot}.png").exists():
        # the report's plot again at the resolution of the demo's other plots
        from mica.plot import save_figure
        from mica.vv import get_arch_vv

        obi = get_arch_vv(obsid, version=info["revision"], archive=root)
        figs = obi.plot_slot(int(slot))
        paths.append(save_figure(figs["all"], out / f"vv_{obsid}_slot_{slot}.png", True))
    return paths
