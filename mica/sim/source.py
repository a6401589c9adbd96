"""``sim``: the simulated Chandra as a source, one writer per product.

`SIM_WRITERS` maps a product name to the `mica.sim` functions that write its files: a
time-range writer (ACA L0, dark-calibration replicas) or the per-obsid triple (obsids in a
range, (default, last) revisions, files of one revision) for aspect L1 and obspar. Every file
written carries the simulation marker (`mica.engine.provenance`), so it is never mistaken for
flight data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mica.engine.product import FileProduct
from mica.sources.base import Source, SourceError

#: the seed of the simulated mission every sim writer uses (`mica.sim.mission.default_mission`)
SIM_SEED = 1999


def _l0_range(start: float, stop: float, dest: Path) -> list[Path]:
    from mica.engine.executors.process import process_map
    from mica.sim.aca_l0 import plan_l0_files, write_l0_file

    plans = [(plan, dest) for plan in plan_l0_files(start, stop)]
    return list(process_map(write_l0_file, plans, preload=["mica.sim.aca_l0"]))


def _dark_range(start: float, stop: float, dest: Path) -> list[Path]:
    from mica.sim.aca_dark import simulate_replicas

    return simulate_replicas(start, stop, dest)


@dataclass(frozen=True)
class ObsidWriters:
    """The simulated upstream of a per-obsid product."""

    obsids: Callable[[float, float], list[int]]
    revisions: Callable[[int], tuple[int | None, int | None]]
    write: Callable[[int, int, Path], list[Path]]

    def time_range(self, start: float, stop: float, dest: Path) -> list[Path]:
        """Time-range form: the default revision of every obsid in [start, stop]."""
        out: list[Path] = []
        for obsid in self.obsids(start, stop):
            default, _ = self.revisions(obsid)
            if default is not None:
                out += self.write(obsid, default, dest)
        return out


def _asp_l1(source: SimSource) -> ObsidWriters:
    from mica.sim import asp_l1

    write = partial(asp_l1.write_asp_l1, decimate=source.l1_decimate)
    return ObsidWriters(asp_l1.sim_obsids, asp_l1.sim_revisions, write)


def _obspar(source: SimSource) -> ObsidWriters:
    from mica.sim import obspar

    return ObsidWriters(obspar.sim_obsids, obspar.sim_obspar_revisions, obspar.write_obspars)


#: product name -> its time-range writer, or a function of the source returning its per-obsid
#: writers
SIM_WRITERS: dict[
    str, Callable[[float, float, Path], list[Path]] | Callable[[SimSource], ObsidWriters]
] = {
    "aca-l0": _l0_range,
    "aca-dark": _dark_range,
    "asp-l1": _asp_l1,
    "obspar": _obspar,
}
_PER_OBSID = {"asp-l1", "obspar"}


class SimSource(Source):
    """The simulated Chandra: deterministic files written by the product's simulator."""

    scheme = "sim"
    spec = "sim"
    provenance = "simulated"
    products = frozenset(SIM_WRITERS)

    def __init__(self, l1_decimate: int | None = None) -> None:
        #: keep every k-th aspect L1 sample and image (None: ``MICA_SIM_L1_DECIMATE``)
        self.l1_decimate = l1_decimate

    def simulator(self) -> dict[str, object]:
        """What an archive records of the simulator (`mica.engine.provenance`)."""
        import mica

        return {"seed": SIM_SEED, "version": mica.__version__}

    def _obsid_writers(self, product: FileProduct) -> ObsidWriters:
        self.require(product)
        if product.name not in _PER_OBSID:
            raise SourceError(f"the simulated upstream has no per-obsid {product.name} files")
        return SIM_WRITERS[product.name](self)

    def fetch(
        self,
        product: FileProduct,
        start: float,
        stop: float,
        dest: Path,
        lookback: float | None = None,
    ) -> list[Path]:
        # The simulator writes the files overlapping the range: no look-back needed.
        self.require(product)
        if product.name in _PER_OBSID:
            return self._obsid_writers(product).time_range(start, stop, dest)
        return SIM_WRITERS[product.name](start, stop, dest)

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        return self._obsid_writers(product).obsids(start, stop)

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        return self._obsid_writers(product).revisions(obsid)

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        return self._obsid_writers(product).write(obsid, revision, dest)

    def obsid_interval(self, obsid: int) -> tuple[float, float] | None:
        """The observation's interval in the simulated schedule (None: not scheduled)."""
        from mica.sim.mission import get_mission

        try:
            obs = get_mission(SIM_SEED).observation(obsid)
        except KeyError:
            return None
        return obs.tstart, obs.tstop
