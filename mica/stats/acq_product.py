"""The acquisition statistics product (``acq-stats``): a derived table, one unit per obsid/OBI.

Inputs: the obspar archive (``obi_num``; an observation without obspar fails with that reason)
and the PCAD inputs of `mica.stats.inputs.provider_for` (simulated or Ska). The table (its
columns `DTYPE`, `FOLDER` and file `TABLE_NAME`: ``<archive>/acq_stats/acq_stats.h5``) is
defined here and read by `mica.stats.acq_stats`. `ObservationStats` (the planning and
computing of one observation's rows) serves the guide statistics too
(`mica.stats.guide_product`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mica._lazy import import_target
from mica.engine.derived import (
    DerivedFailure,
    DerivedProduct,
    DerivedUnit,
    GenerationTable,
    TableSpec,
)
from mica.errors import InvalidArgumentError, MissingArchiveError

__all__ = [
    "ACQ_STATS",
    "DTYPE",
    "FOLDER",
    "ObservationStats",
    "SPEC",
    "TABLE_NAME",
    "obspar_obi",
    "plan_observations",
    "star_condition",
]

FOLDER = "acq_stats"
TABLE_NAME = "acq_stats.h5"

_OBS = [("obsid", "i8"), ("obi", "i8"), ("acq_start", "S21"), ("guide_start", "S21"),
        ("guide_tstart", "f8"), ("one_shot_length", "f8"), ("revision", "S15")]  # fmt: skip
_CAT = [("slot", "i8"), ("idx", "i8"), ("type", "S5"), ("yang", "f8"), ("zang", "f8"),
        ("halfw", "i8"), ("mag", "f8")]  # fmt: skip
_STAT = [("acqid", "?"), ("star_tracked", "?"), ("spoiler_tracked", "?"), ("img_func", "S7"),
         ("n_trak_interv", "i8"), ("max_trak_cdy", "f8"), ("min_trak_cdy", "f8"),
         ("mean_trak_cdy", "f8"), ("max_trak_cdz", "f8"), ("min_trak_cdz", "f8"),
         ("mean_trak_cdz", "f8"), ("max_trak_mag", "f8"), ("min_trak_mag", "f8"),
         ("mean_trak_mag", "f8"), ("cdy", "f8"), ("cdz", "f8"), ("dy", "f8"), ("dz", "f8"),
         ("ion_rad", "?"), ("def_pix", "?"), ("mult_star", "?"), ("sat_pix", "?"),
         ("mag_obs", "f8"), ("yang_obs", "f8"), ("zang_obs", "f8")]  # fmt: skip
_AGASC = [("agasc_id", "i8"), ("color1", "f8"), ("ra", "f8"), ("dec", "f8"), ("epoch", "f8"),
          ("pm_ra", "i8"), ("pm_dec", "i8"), ("var", "i8"), ("pos_err", "i8"),
          ("mag_aca", "f8"), ("mag_err", "i8"), ("mag_band", "i8"), ("pos_catid", "i8"),
          ("aspq1", "i8"), ("aspq2", "i8"), ("aspq3", "i8"), ("acqq1", "i8"), ("acqq2", "i8"),
          ("acqq4", "i8")]  # fmt: skip
_TEMP = [("n100_warm_frac", "f8"), ("ccd_temp", "f8")]
_BAD = [("known_bad", "?"), ("bad_comment", "S15")]

#: the 62 columns of the acquisition table, in order; little-endian, 476 bytes a row
DTYPE = np.dtype([(n, "<" + t if t[0] in "if" else t) for n, t in
                  _OBS + _CAT + _STAT + _AGASC + _TEMP + _BAD])  # fmt: skip

SPEC = TableSpec(
    DTYPE,
    key=("obsid", "obi"),
    indexes=("obsid", "agasc_id"),
    csi=("guide_tstart",),
    preserve=("known_bad", "bad_comment"),
    match=("slot",),
)


def star_condition(agasc_id: object) -> str:
    """The table condition selecting the rows of one AGASC star (the readers'
    ``get_star_stats``); `InvalidArgumentError` when ``agasc_id`` is not an integer."""
    try:
        value = int(agasc_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"an AGASC id is an integer, got {agasc_id!r}") from None
    return f"agasc_id == {value}"


def plan_observations(
    archive: Path,
    table: GenerationTable,
    time_column: str,
    *,
    start,
    stop,
    obsids: list[int] | None,
    check_missing: bool,
) -> list[DerivedUnit]:
    """The observations to compute: by obsid, or those with an obspar between start and stop.

    Default span: after the table's latest ``time_column`` (everything with ``check_missing``,
    which also retries the recorded failures). A recorded failure is not retried otherwise.
    """
    from mica.archive.obspar import get_obsids, obsid_interval
    from mica.stats.inputs import provider_for
    from mica.time import to_secs

    if not (archive / "obspar").is_dir():
        raise MissingArchiveError(
            f"{archive / 'obspar'}: no obspar archive; run 'mica update obspar' first"
        )
    provider = provider_for(archive)
    done, failed = table.keys(), table.failed_keys()
    done_obsids = {k[0] for k in done}
    failed_obsids = {k[0] for k in failed}
    units = []
    if obsids is not None:
        for obsid in obsids:
            span = obsid_interval(obsid, data_root=archive / "obspar")
            t0 = float(span[0] if span else provider.maneuver(obsid).acq_start)
            units.append(DerivedUnit((obsid, _obi(archive, obsid)), f"obsid {obsid}", t0, obsid))
        return units
    t0 = float(to_secs(start)) if start is not None else None
    if t0 is None:
        latest = None if check_missing else table.max(time_column)
        t0 = latest + 1.0 if latest is not None else 0.0
    t1 = float(to_secs(stop)) if stop is not None else 2e9
    # the candidates are the observations with an obspar (the obspar archive says which
    # observations the archive covers); kadi/the simulator give their times
    archived = set(get_obsids(t0, t1, data_root=archive / "obspar"))
    retry = {k[0] for k in failed} if check_missing else set()
    for obsid in sorted(
        archived | retry, key=lambda o: obsid_interval(o, archive / "obspar") or (0,)
    ):
        if obsid in done_obsids or (obsid in failed_obsids and not check_missing):
            continue
        span = obsid_interval(obsid, data_root=archive / "obspar")
        tstart = float(span[0]) if span else provider.maneuver(obsid).acq_start
        units.append(DerivedUnit((obsid, _obi(archive, obsid)), f"obsid {obsid}", tstart, obsid))
    return units


def _obi(archive: Path, obsid: int) -> int:
    """The OBI of an obsid's (first) obspar; 0 when it has none (its compute then fails)."""
    from mica.archive.obspar import get_obspar

    pars = get_obspar(obsid, data_root=archive / "obspar")
    return int(pars.get("obi_num", 0)) if pars is not None else 0


def obspar_obi(archive: Path, obsid: int) -> int:
    """The OBI of an obsid's obspar (DerivedFailure naming the obsid when there is none)."""
    from mica.archive.obspar import get_obspar

    pars = get_obspar(obsid, data_root=archive / "obspar")
    if pars is None:
        raise DerivedFailure(
            f"obsid {obsid}: no obspar in {archive / 'obspar'} (run 'mica update obspar')"
        )
    return int(pars.get("obi_num", 0))


class ObservationStats(DerivedProduct):
    """Per-star statistics of each observation (acquisition, guide): one unit per obsid/OBI.

    Parameters
    ----------
    name, folder, table_name : str
        Command name, folder under the archive root, table file.
    spec : TableSpec
        The table.
    time_column : str
        The column whose latest value a regular update continues from.
    calc : str
        ``module:function`` computing one observation's rows from (provider, obsid, obi)
        (a name, so the description stays picklable and imports the algorithm on use).
    """

    inputs = ("obspar", "aca0")
    # an observation's statistics take about 20 ms: 8 a task keep the scheduler's share small
    units_per_task = 8

    def __init__(
        self, name: str, folder: str, table_name: str, spec: TableSpec, time_column: str, calc: str
    ):
        self.name, self.folder, self.table_name, self.spec = name, folder, table_name, spec
        self.time_column, self.calc = time_column, calc

    def plan(self, archive, table, *, start, stop, obsids, check_missing):
        return plan_observations(
            archive,
            table,
            self.time_column,
            start=start,
            stop=stop,
            obsids=obsids,
            check_missing=check_missing,
        )

    def compute(self, archive: Path, unit: DerivedUnit, staging: Path) -> np.ndarray:
        from mica.stats.inputs import InputError, provider_for

        calc = import_target(self.calc)
        obsid = int(unit.data)
        obi = obspar_obi(archive, obsid)
        try:
            return calc(provider_for(archive), obsid, obi)
        except InputError as err:
            raise DerivedFailure(str(err)) from err


#: acquisition statistics: one row per ACQ/BOT star per observation
ACQ_STATS = ObservationStats(
    "acq-stats", FOLDER, TABLE_NAME, SPEC, "guide_tstart", "mica.stats._acq:calc_acq_stats"
)
