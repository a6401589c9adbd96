"""The inputs of the acquisition/guide statistics: one small provider contract.

The original reads cheta telemetry, kadi maneuvers/dwells, starcheck catalogs and the AGASC.
Here those four come from a `Provider`; `provider_for` picks the implementation by the kind of
the archive (``simulated`` -> `mica.sim.pcad`, ``real`` -> `mica.stats.ska_inputs`) through a
lazy ``module:attribute`` name, as `mica.sources` does, so that neither is imported unless used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mica._lazy import import_target
from mica.errors import InputError, MicaError

__all__ = [
    "Series",
    "Maneuver",
    "Provider",
    "CATALOG_DTYPE",
    "AGASC_DTYPE",
    "PROVIDERS",
    "provider_for",
    "pm_correct",
    "InputError",
]

#: one row per star-catalog entry (starcheck semantics: idx 1.., halfw and mag planned)
CATALOG_DTYPE = np.dtype(
    [
        ("slot", "i8"),
        ("idx", "i8"),
        ("type", "S5"),
        ("yang", "f8"),
        ("zang", "f8"),
        ("halfw", "i8"),
        ("mag", "f8"),
        ("id", "i8"),
        ("sz", "S4"),
        ("mp_starcat_time", "S21"),
    ]
)

#: the AGASC columns the tables copy (upper-case AGASC names), plus the PM-corrected position
AGASC_DTYPE = np.dtype(
    [
        ("AGASC_ID", "i8"),
        ("COLOR1", "f8"),
        ("RA", "f8"),
        ("DEC", "f8"),
        ("EPOCH", "f8"),
        ("PM_RA", "i8"),
        ("PM_DEC", "i8"),
        ("VAR", "i8"),
        ("POS_ERR", "i8"),
        ("MAG_ACA", "f8"),
        ("MAG_ACA_ERR", "i8"),
        ("MAG_BAND", "i8"),
        ("POS_CATID", "i8"),
        ("ASPQ1", "i8"),
        ("ASPQ2", "i8"),
        ("ASPQ3", "i8"),
        ("ACQQ1", "i8"),
        ("ACQQ2", "i8"),
        ("ACQQ4", "i8"),
        ("RA_PMCORR", "f8"),
        ("DEC_PMCORR", "f8"),
    ]
)


@dataclass(frozen=True)
class Series:
    """One MSID over a time range: times (CXC s), values (floats or state-code strings with
    their fixed-width trailing blanks, e.g. ``'ID  '``), bad flags (True = bad sample)."""

    times: np.ndarray
    vals: np.ndarray
    bads: np.ndarray


@dataclass(frozen=True)
class Maneuver:
    """A maneuver to an obsid and its dwell (kadi ``manvrs``/``dwells``), times in CXC s."""

    obsid: int
    start: float  # maneuver start
    acq_start: float  # first AQXN
    guide_start: float  # first GUID
    kalman_start: float  # first KALM
    dwell_start: float  # start of the dwell that follows
    dwell_stop: float  # start of the next maneuver (end of NPNT)


class Provider(Protocol):
    """What the statistics read; every method raises `InputError` naming what is missing."""

    kind: str

    def obsids(self, start: float, stop: float) -> list[tuple[int, float]]:
        """(obsid, tstart) of the commanded observations overlapping [start, stop]."""

    def maneuver(self, obsid: int) -> Maneuver:
        """The maneuver to ``obsid`` (the last one with a dwell) and its dwell."""

    def catalog(self, obsid: int, date: float) -> np.ndarray:
        """The star catalog in effect at ``date`` (`CATALOG_DTYPE`, every type)."""

    def telemetry(self, msids: list[str], start: float, stop: float) -> dict[str, Series]:
        """MSIDs by name over [start, stop] (engineering units, state codes as strings)."""

    def agasc(self, ids: list[int], date: float) -> np.ndarray:
        """AGASC rows (`AGASC_DTYPE`) of ``ids`` with positions PM-corrected to ``date``."""


#: archive kind -> ``module:attribute`` of a callable ``(archive: Path) -> Provider``
PROVIDERS = {
    "simulated": "mica.sim.pcad:SimProvider",
    "real": "mica.stats.ska_inputs:SkaProvider",
}


def provider_for(archive: str | os.PathLike, kind: str | None = None) -> Provider:
    """The input provider of an archive: by its recorded kind (``archive.json`` of its inputs).

    Parameters
    ----------
    archive : path-like
        The folder holding the input archives (``obspar/``, ``aca0/`` ...).
    kind : str, optional
        ``'simulated'`` or ``'real'``; default: the kind recorded by ``obspar/`` or ``aca0/``.
    """
    from mica.engine.provenance import archive_kind

    archive = Path(archive)
    if kind is None:
        for name in ("obspar", "aca0", "asp1"):
            kind = archive_kind(archive / name)
            if kind is not None:
                break
    if kind not in PROVIDERS:
        raise MicaError(
            f"{archive}: no obspar/ (or aca0/) archive with a recorded kind; run "
            "'mica update obspar' first so the statistics know their inputs (simulated or real)"
        )
    return import_target(PROVIDERS[kind])(archive)


def pm_correct(
    ra: np.ndarray, dec: np.ndarray, pm_ra: np.ndarray, pm_dec: np.ndarray, epoch, year
) -> tuple[np.ndarray, np.ndarray]:
    """AGASC proper motion (RA term over cos dec): degrees, PM in mas/yr, -9999 = none."""
    ra, dec = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    dyear = np.asarray(year, dtype=float) - np.asarray(epoch, dtype=float)
    pm_ra = np.where(np.asarray(pm_ra) == -9999, 0, pm_ra)
    pm_dec = np.where(np.asarray(pm_dec) == -9999, 0, pm_dec)
    dec_c = dec + pm_dec * dyear / 3.6e6
    ra_c = ra + pm_ra * dyear / 3.6e6 / np.cos(np.radians(dec))
    return ra_c, dec_c
