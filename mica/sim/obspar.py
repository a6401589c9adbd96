"""Simulated obspar files: one per observation, OBI and revision of the mission schedule.

Values follow the observation (pointing, dither, times, instrument inferred from its fid
lights) and the CXC parameter-file conventions (one parameter a line). Revisions: every obsid
has N001, about 15 % were re-issued as N002 (the default then); a few obsids are observed
in two OBIs (``obi_num`` 1 and 2), each with its own file. Nothing exists for observations
whose processing lies after "now" (``CXOTIME_NOW`` when set, see `mica.time`).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mica.engine.provenance import SIM_OBSPAR_LINE
from mica.sim.mission import Observation, default_mission
from mica.time import conversion_scope, to_secs, to_time

#: obsids forced to two obspar revisions (7000: ``axaff07000_000N002_obs0a.par.gz``)
TWO_REVISIONS = {7000}
#: obsids forced to a given detector (user examples: 7001 is ACIS-I)
DETECTOR_OVERRIDE = {7001: "ACIS-I"}
NOMINAL_SIM_Z = {"ACIS-I": -233.587, "ACIS-S": -190.14, "HRC-I": 126.983, "HRC-S": 250.466}
_DETECTORS = ("ACIS-I", "ACIS-S", "HRC-I", "HRC-S")  # order of the mission's fid sets
_PROCESSING_DELAY = 1.5 * 86400.0
_REISSUE_DELAY = 40 * 86400.0

# (processing date, ASCDSVER, CALDBVER): the pipeline release in force at a date
RELEASES = [
    ("1999:001", "5.0.1", "2.0"),
    ("2001:001", "6.0.1", "2.6"),
    ("2003:001", "6.13.4", "2.21"),
    ("2005:001", "7.5.4", "3.0.2"),
    ("2007:001", "7.6.10", "3.3.0"),
    ("2009:001", "8.0.1", "4.1.1"),
    ("2011:001", "8.3.2.1", "4.3.0"),
    ("2014:001", "10.2", "4.6.1"),
    ("2017:001", "10.6", "4.7.3"),
    ("2019:200", "10.8.3", "4.8.4"),
    ("2022:001", "10.11", "4.9.7"),
    ("2025:001", "10.13", "4.11.5"),
]
_RELEASE_T = np.array([to_secs(d) for d, _, _ in RELEASES])


def release_at(t: float) -> tuple[str, str]:
    """(ASCDSVER, CALDBVER) of a processing at CXC time ``t``."""
    i = max(0, int(np.searchsorted(_RELEASE_T, t, side="right")) - 1)
    return RELEASES[i][1], RELEASES[i][2]


def unit_hash(obsid: int, salt: str) -> float:
    """A deterministic uniform [0, 1) number per obsid and purpose."""
    digest = hashlib.blake2b(f"{obsid}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def now() -> float:
    """The simulated present (CXOTIME_NOW when set): nothing processed later exists."""
    return float(to_secs(None))


def observation(obsid: int) -> Observation | None:
    try:
        return default_mission().observation(int(obsid))
    except (KeyError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Obi:
    """One observation interval of an obsid."""

    obi: int
    tstart: float
    tstop: float


def obis(obs: Observation) -> list[Obi]:
    """OBIs of an observation: one (``obi_num`` 0), or two (1, 2) for a few long ones."""
    if (
        obs.kind == "science"
        and obs.tstop - obs.tstart > 15000
        and unit_hash(obs.obsid, "multi-obi") < 0.02
    ):
        mid = 0.5 * (obs.tstart + obs.tstop)
        return [Obi(1, obs.tstart, mid), Obi(2, mid, obs.tstop)]
    return [Obi(0, obs.tstart, obs.tstop)]


def detector(obs: Observation) -> str:
    """The science instrument: the mission's fid lights identify it (ERs: ACIS-S)."""
    if obs.obsid in DETECTOR_OVERRIDE:
        return DETECTOR_OVERRIDE[obs.obsid]
    if obs.kind != "science":
        return "ACIS-S"
    fids = [(s.yag, s.zag) for s in obs.slots if s.role == "fid"]
    try:
        from mica.sim.mission import _FID_SETS  # the fid positions of each instrument

        sets = np.asarray(_FID_SETS)
        cost = [sum(np.hypot(*(s - np.asarray(f)).T).min() for f in fids) for s in sets]
        return _DETECTORS[int(np.argmin(cost))]
    except (ImportError, ValueError):
        return _DETECTORS[int(unit_hash(obs.obsid, "detector") * 4)]


def obspar_revisions(obsid: int) -> list[tuple[int, float]]:
    """(revision, processing time) of every obspar issued for an obsid so far."""
    obs = observation(obsid)
    if obs is None:
        return []
    revs = [(1, obs.tstop + _PROCESSING_DELAY)]
    if obsid in TWO_REVISIONS or unit_hash(obsid, "obspar-reissue") < 0.15:
        revs.append((2, obs.tstop + _REISSUE_DELAY))
    t_now = now()
    return [(r, t) for r, t in revs if t <= t_now]


def sim_obspar_revisions(obsid: int) -> tuple[int | None, int | None]:
    """(default, last): obspar re-issues are released at once, so they are equal."""
    revs = obspar_revisions(obsid)
    if not revs:
        return None, None
    return revs[-1][0], revs[-1][0]


def sim_obsids(start: float, stop: float) -> list[int]:
    """Every observation (science and ER) overlapping [start, stop] with an obspar issued."""
    obs = default_mission().observations(start, stop)
    t_now = now()
    return [o.obsid for o in obs if o.tstop + _PROCESSING_DELAY <= t_now]


def _tt_iso(t: float) -> str:
    with conversion_scope():
        return to_time(t).tt.isot[:19]


def obspar_values(
    obs: Observation, obi: Obi, revision: int, processed: float
) -> list[tuple[str, str, object, str]]:
    """(name, type, value, prompt) of every parameter, in file order."""
    det = detector(obs)
    acis = det.startswith("ACIS")
    ascdsver, _ = release_at(processed)
    amp_y, amp_z = (a / 3600.0 for a in obs.dither_ampl)
    freq_y, freq_z = (360.0 / p for p in obs.dither_period)
    phase_y, phase_z = (float(np.degrees(p)) % 360.0 for p in obs.dither_phase)
    science = obs.kind == "science"
    u = unit_hash(obs.obsid, "pars")
    y_off = round((u - 0.5) * 0.6, 2) if science else 0.0
    z_off = round((unit_hash(obs.obsid, "zoff") - 0.5) * 0.6, 2) if science else 0.0
    ccds = {f"ccdi{i}_on": "Y" if acis and det == "ACIS-I" else "N" for i in range(4)}
    ccds.update({f"ccds{i}_on": "N" for i in range(6)})
    if det == "ACIS-S":
        ccds.update({f"ccds{i}_on": "Y" for i in (1, 2, 3, 4)})
        ccds["ccdi3_on"] = "Y" if u < 0.5 else "N"
    elif det == "ACIS-I":
        ccds.update({"ccds2_on": "Y" if u < 0.6 else "N", "ccds3_on": "Y"})
    grating = "NONE" if u < 0.8 else ("HETG" if acis else "LETG")
    seq_num = f"{100000 + (obs.obsid * 37) % 900000:06d}"
    exp = obi.tstop - obi.tstart
    sim_z = NOMINAL_SIM_Z[det]
    values: list[tuple[str, str, object, str]] = [
        ("obs_id", "s", str(obs.obsid), "Observation ID"),
        ("obi_num", "i", obi.obi, "Observation interval number"),
        ("seq_num", "s", seq_num, "Sequence number"),
        (
            "title",
            "s",
            f"Simulated {'science' if science else 'engineering'} observation {obs.obsid}",
            "Proposal title",
        ),
        ("observer", "s", "Sim Observer" if science else "CXC Engineering", "Observer"),
        ("ao", "s", f"{max(0, int((obs.tstart - 46000000) / 31557600)):02d}", "AO cycle"),
        ("object", "s", f"SIM-{obs.obsid:05d}" if science else "NONE", "Target name"),
        ("ss_object", "s", "NONE", "Solar system object"),
        ("instrume", "s", "ACIS" if acis else "HRC", "Instrument"),
        ("grating", "s", grating, "Grating"),
        ("detector", "s", det, "Detector"),
        (
            "detnam",
            "s",
            (
                "ACIS-"
                + "".join(
                    k[4] for k, v in sorted(ccds.items()) if v == "Y" and k.startswith("ccdi")
                )
                + "".join(
                    str(int(k[4]) + 4)
                    for k, v in sorted(ccds.items())
                    if v == "Y" and k.startswith("ccds")
                )
            )
            if acis
            else det,
            "Detector name",
        ),
        ("si_mode", "s", ("TE_" if acis else "HRC_") + f"{int(u * 1000):04X}", "SI mode"),
        ("optical_monitor", "s", "N", "Optical monitor"),
        ("raster_scan", "s", "N", "Raster scan"),
        ("dither", "s", "Y", "Dither on"),
        ("dither_y_amp", "r", round(amp_y, 7), "Dither amplitude, Y (deg)"),
        ("dither_y_freq", "r", round(freq_y, 7), "Dither rate, Y (deg/s of phase)"),
        ("dither_y_phase", "r", round(phase_y, 5), "Dither phase, Y (deg)"),
        ("dither_z_amp", "r", round(amp_z, 7), "Dither amplitude, Z (deg)"),
        ("dither_z_freq", "r", round(freq_z, 7), "Dither rate, Z (deg/s of phase)"),
        ("dither_z_phase", "r", round(phase_z, 5), "Dither phase, Z (deg)"),
        ("pre_id", "s", "", "Preceding observation"),
        ("uninterrupted", "s", "N", "Uninterrupted observation"),
        ("ra_pnt", "r", round(obs.ra, 6), "Mean pointing RA (deg)"),
        ("dec_pnt", "r", round(obs.dec, 6), "Mean pointing Dec (deg)"),
        ("roll_pnt", "r", round(obs.roll, 6), "Mean pointing roll (deg)"),
        (
            "ra_targ",
            "r",
            round((obs.ra + y_off / 60.0 / max(np.cos(np.radians(obs.dec)), 0.05)) % 360, 6),
            "Target RA (deg)",
        ),
        ("dec_targ", "r", round(obs.dec + z_off / 60.0, 6), "Target Dec (deg)"),
        ("ra_nom", "r", round(obs.ra, 6), "Nominal RA (deg)"),
        ("dec_nom", "r", round(obs.dec, 6), "Nominal Dec (deg)"),
        ("roll_nom", "r", round(obs.roll, 6), "Nominal roll (deg)"),
        ("y_det_offset", "r", y_off, "Y detector offset (arcmin)"),
        ("z_det_offset", "r", z_off, "Z detector offset (arcmin)"),
        ("radial_offset", "r", round(float(np.hypot(y_off, z_off)), 3), "Radial offset (arcmin)"),
        ("defocus", "r", 0.0, "Defocus (mm)"),
        ("sim_z_offset", "r", 0.0, "SIM-Z offset (mm)"),
        ("sim_x", "r", -0.6837, "SIM X (mm)"),
        ("sim_y", "r", 0.0, "SIM Y (mm)"),
        ("sim_z", "r", sim_z, "SIM Z (mm)"),
        ("foc_len", "r", 10070.0, "Focal length (mm)"),
        ("tstart", "r", round(obi.tstart, 6), "Observation start (CXC s)"),
        ("tstop", "r", round(obi.tstop, 6), "Observation stop (CXC s)"),
        ("date-obs", "s", _tt_iso(obi.tstart), "Start (TT)"),
        ("date-end", "s", _tt_iso(obi.tstop), "Stop (TT)"),
        ("sched_start", "r", round(obi.tstart - 60.0, 3), "Scheduled start (CXC s)"),
        ("sched_stop", "r", round(obi.tstop, 3), "Scheduled stop (CXC s)"),
        ("sched_exp_time", "r", round(exp, 3), "Scheduled exposure (s)"),
        ("obs_mode", "s", "POINTING", "Observation mode"),
        ("maneuver", "s", "Y", "Maneuver before the observation"),
        ("maneuver_ref", "s", "", "Maneuver reference"),
        ("maneuver_v1", "r", round(float(np.cos(np.radians(obs.roll))), 6), "Maneuver axis 1"),
        ("maneuver_v2", "r", round(float(np.sin(np.radians(obs.roll))), 6), "Maneuver axis 2"),
        ("maneuver_v3", "r", 0.0, "Maneuver axis 3"),
        ("maneuver_angle", "r", round(30 + 120 * u, 3), "Maneuver angle (deg)"),
        ("mission", "s", "AXAF", "Mission"),
        ("telescop", "s", "CHANDRA", "Telescope"),
        ("timeunit", "s", "s", "Time unit"),
        ("timesys", "s", "TT", "Time system"),
        ("timversn", "s", "4.0", "Time version"),
        ("timeref", "s", "LOCAL", "Time reference"),
        ("tassign", "s", "SATELLITE", "Time assigned by"),
        ("mjdref", "r", 50814.0, "MJD reference"),
        ("timezero", "r", 0.0, "Time offset"),
        ("datamode", "s", ("VFAINT" if u < 0.5 else "FAINT") if acis else "DEFAULT", "Data mode"),
        ("readmode", "s", "TIMED" if acis else "", "Read mode"),
        *sorted(((k, "s", v, f"CCD {k[3:5].upper()} on") for k, v in ccds.items())),
        ("onchip_sum", "s", "N", "On-chip summing"),
        ("sumrow", "i", 1, "Summed rows"),
        ("sumcol", "i", 1, "Summed columns"),
        ("subarray", "s", "NONE", "Subarray"),
        ("startrow", "i", 1, "Subarray start row"),
        ("rowcnt", "i", 1024, "Subarray rows"),
        ("subarray_frame_time", "r", 3.2, "Frame time (s)"),
        ("duty_cycle", "s", "N", "Duty cycle"),
        ("dtycycle", "i", 0, "Duty cycle count"),
        ("exptimea", "r", 3.2 if acis else 0.0, "Exposure time A (s)"),
        ("exptimeb", "r", 0.0, "Exposure time B (s)"),
        ("most_efficient", "s", "Y", "Most efficient"),
        ("eventfilter", "s", "Y" if acis else "N", "Event filter"),
        ("phamin", "r", 0.0, "PHA minimum"),
        ("pharange", "r", 3750.0, "PHA range"),
        ("bias_request", "s", "Y" if acis else "N", "Bias request"),
        ("mode", "s", "h", "Parameter file mode"),
        ("dropped_chip_count", "i", 0, "Dropped chips"),
        ("seg_max_num", "i", 1, "Maximum segment number"),
        ("antico_enable", "s", "N", "Anti-coincidence"),
        ("uld_enable", "s", "Y" if not acis else "N", "Upper level discriminator"),
        ("timing_mode", "s", "N", "HRC timing mode"),
        ("zero_block", "s", "N", "Zero block"),
        ("blank_enable", "s", "N" if acis else "Y", "Blanking"),
        ("width_enable", "s", "N", "Width enable"),
        ("spect_mode", "s", "N", "HRC spectroscopy mode"),
        ("py_shutter_position", "i", 0, "+Y shutter"),
        ("my_shutter_position", "i", 0, "-Y shutter"),
        ("range_switch_level", "i", 90 if not acis else 0, "Range switch"),
        ("upper_level_disc", "i", 255 if not acis else 0, "ULD"),
        ("trigger_level", "i", 10 if not acis else 0, "Trigger level"),
        ("u_blank_hi", "i", 0, "U blank high"),
        ("u_blank_low", "i", 0, "U blank low"),
        ("v_blank_low", "i", 0, "V blank low"),
        ("v_blank_hi", "i", 0, "V blank high"),
        ("width_threshold", "i", 0, "Width threshold"),
        ("mt_a", "r", round(80000.0 + 4000 * u, 3), "Orbit semi-major axis (km)"),
        ("mt_e", "r", round(0.75 - 0.1 * u, 6), "Orbit eccentricity"),
        ("mt_i", "r", round(28.5 + 30 * u, 4), "Orbit inclination (deg)"),
        ("mt_raan", "r", round(360 * unit_hash(obs.obsid, "raan"), 4), "Orbit RAAN (deg)"),
        ("mt_aop", "r", round(360 * unit_hash(obs.obsid, "aop"), 4), "Argument of perigee"),
        ("mt_ma", "r", round(360 * unit_hash(obs.obsid, "ma"), 4), "Mean anomaly (deg)"),
        ("mt_epoch", "r", round(obs.tstart - 86400.0, 3), "Orbit epoch (CXC s)"),
        ("origin", "s", "ASC", "Origin"),
        ("ascdsver", "s", ascdsver, "ASC-DS version"),
        ("obi_data", "s", "Y", "OBI data"),
        ("revision", "i", revision, "Processing revision"),
        ("obspar_ver", "i", 5, "Obspar version"),
        ("obspar_type", "s", "ARCHIVE" if science else "ENGINEERING", "Obspar type"),
        ("obspar_stat", "s", "FINAL" if revision > 1 else "PRELIMINARY", "Obspar status"),
    ]
    return values


def _format(ptype: str, value: object) -> str:
    if ptype == "s":
        return '"' + str(value).replace('"', "'") + '"'
    if ptype == "r":
        return repr(float(value))
    return str(value)


def obspar_text(obs: Observation, obi: Obi, revision: int, processed: float) -> str:
    """An IRAF parameter file: ``name,type,mode,value,min,max,prompt`` per line."""
    lines = [SIM_OBSPAR_LINE]  # the simulation marker (flight obspars have no such line)
    lines += [
        f'{name},{ptype},h,{_format(ptype, value)},,,"{prompt}"'
        for name, ptype, value, prompt in obspar_values(obs, obi, revision, processed)
    ]
    return "\n".join(lines) + "\n"


def obspar_name(obsid: int, obi: int, revision: int) -> str:
    return f"axaff{obsid:05d}_{obi:03d}N{revision:03d}_obs0a.par.gz"


def write_obspars(obsid: int, revision: int, dest: Path) -> list[Path]:
    """Write the obspar of every OBI of (obsid, revision) into ``dest``; [] if none exists."""
    obs = observation(obsid)
    revs = dict(obspar_revisions(obsid))
    if obs is None or revision not in revs:
        return []
    out = []
    for obi in obis(obs):
        path = Path(dest) / obspar_name(obsid, obi.obi, revision)
        data = obspar_text(obs, obi, revision, revs[revision]).encode()
        with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
            gz.write(data)  # mtime=0: the same obspar always has the same bytes
        out.append(path)
    return out
