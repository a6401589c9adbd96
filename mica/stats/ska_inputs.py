"""The `mica.stats.inputs.Provider` over the Ska packages: cheta, kadi, agasc, mica.starcheck.

For users inside the aspect team's environment. Every package is imported when first used, so
this module imports anywhere; `available` says whether the packages import (the contract tests
skip with its reason here).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from mica.stats.inputs import AGASC_DTYPE, CATALOG_DTYPE, InputError, Maneuver, Series

__all__ = ["SkaProvider", "available", "REQUIRED"]

REQUIRED = ("cheta.fetch", "kadi.events", "agasc", "mica.starcheck")


def available() -> tuple[bool, str]:
    """(True, '') when the Ska packages import, else (False, the reason)."""
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except Exception as err:  # any import failure means "not this environment"
            return False, f"{name} does not import ({type(err).__name__}: {err})"
    return True, ""


def _secs(date) -> float:
    from mica.time import to_secs

    return float(to_secs(date))


class SkaProvider:
    """The real inputs: cheta telemetry, kadi events, the starcheck database and the AGASC."""

    kind = "real"

    def __init__(self, archive: str | Path | None = None) -> None:
        ok, why = available()
        if not ok:
            raise InputError(f"the Ska inputs are not available here: {why}")
        self.archive = archive

    def obsids(self, start: float, stop: float) -> list[tuple[int, float]]:
        from kadi import events

        return [(int(o.obsid), _secs(o.start)) for o in events.obsids.filter(start, stop)]

    def maneuver(self, obsid: int) -> Maneuver:
        from kadi import events

        manvrs = events.manvrs.filter(obsid=obsid, n_dwell__gt=0)
        dwells = events.dwells.filter(obsid=obsid)
        if len(manvrs) == 0 or len(dwells) == 0:
            raise InputError(f"obsid {obsid}: no kadi maneuver with a dwell")
        m, d = manvrs[len(manvrs) - 1], dwells[0]
        nxt = m.get_next()
        return Maneuver(
            obsid,
            _secs(m.start),
            _secs(m.acq_start),
            _secs(m.guide_start),
            _secs(m.kalman_start),
            _secs(d.start),
            _secs(nxt.start) if nxt else _secs(d.stop),
        )

    def catalog(self, obsid: int, date: float) -> np.ndarray:
        from mica.starcheck import get_starcheck_catalog_at_date

        sc = get_starcheck_catalog_at_date(date)
        if not sc or "cat" not in sc or len(sc["cat"]) == 0:
            raise InputError(f"obsid {obsid}: no starcheck catalog at {date}")
        cat = sc["cat"]
        out = np.zeros(len(cat), CATALOG_DTYPE)
        for name in CATALOG_DTYPE.names:
            if name in cat.colnames:
                out[name] = cat[name]
        return out

    def telemetry(self, msids: list[str], start: float, stop: float) -> dict[str, Series]:
        from cheta import fetch

        units = "sci" if msids == ["AACCCDPT"] else "eng"
        fetch.data_source.set("cxc")
        with fetch.set_units(units) if hasattr(fetch, "set_units") else _Null():
            data = fetch.MSIDset(msids, start, stop)
        return {
            name: Series(np.asarray(m.times), np.asarray(m.vals), np.asarray(m.bads, bool))
            for name, m in data.items()
        }

    def agasc(self, ids: list[int], date: float) -> np.ndarray:
        import agasc

        out = np.zeros(len(ids), AGASC_DTYPE)
        for k, agasc_id in enumerate(ids):
            try:
                star = agasc.get_star(agasc_id, date=date, use_supplement=False)
            except Exception as err:
                raise InputError(f"AGASC id {agasc_id}: {err}") from err
            for name in AGASC_DTYPE.names:
                out[name][k] = star[name]
        return out


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
