"""The V&V summary table: its columns, file and rows, defined once.

``<archive>/vv/vv.h5``, node ``vv``: the original's 37 columns plus ``disposition`` and
``reasons``, one row per slot with statistics, keyed by (obsid, revision). The derived product
(`mica.vv.product`) writes it, `Obi.slots_to_table` writes one revision's rows, and the readers
(`mica.vv`) read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mica.engine.table_store import TableSpec

FOLDER = "vv"
TABLE_NAME = "vv.h5"
COMMAND = "mica update vv"
REASON_LEN = 300

VV_DTYPE = np.dtype(
    [
        ("obsid", "<i4"),
        ("revision", "<i4"),
        ("isdefault", "<i4"),
        ("aspect_1_id", "<i4"),
        ("used", "<i4"),
        ("vv_version", "<i4"),
        ("ap_date", "S21"),
        ("tstart", "<f8"),
        ("tstop", "<f8"),
        ("sim_z", "<f8"),
        ("sim_z_offset", "<f8"),
        ("instrument", "S10"),
        ("ra_pnt", "<f8"),
        ("dec_pnt", "<f8"),
        ("roll_pnt", "<f8"),
        ("slot", "<i4"),
        ("type", "S10"),
        ("n_pts", "<i4"),
        ("rad_off", "<f8"),
        ("frac_dy_big", "<f8"),
        ("frac_dz_big", "<f8"),
        ("frac_mag_big", "<f8"),
        ("mean_y", "<f8"),
        ("mean_z", "<f8"),
        ("dy_mean", "<f8"),
        ("dy_med", "<f8"),
        ("dy_rms", "<f8"),
        ("dz_mean", "<f8"),
        ("dz_med", "<f8"),
        ("dz_rms", "<f8"),
        ("dr_mean", "<f8"),
        ("dr_med", "<f8"),
        ("dr_rms", "<f8"),
        ("mag_mean", "<f8"),
        ("mag_med", "<f8"),
        ("mag_rms", "<f8"),
        ("mean_aacccdpt", "<f8"),
        ("disposition", "S4"),
        ("reasons", f"S{REASON_LEN}"),
    ]
)
SPEC_COLUMNS = VV_DTYPE.names[:37]  # the original's columns; the last two are new
VV_SPEC = TableSpec(
    VV_DTYPE, key=("obsid", "revision"), indexes=("obsid",), csi=("tstart",), match=("slot",),
    node="vv",
)  # fmt: skip


def _num(value: Any) -> float:
    return np.nan if value is None else float(value)


def table_rows(info: dict[str, Any], meta: dict[str, Any]) -> np.ndarray:
    """The summary-table rows of an info dict (one per slot with statistics)."""
    slots = [info["slots"][k] for k in sorted(info["slots"], key=int)]
    slots = [s for s in slots if "n_pts" in s]
    rows = np.zeros(len(slots), VV_DTYPE)
    disp = info["disposition"]
    reasons = "; ".join(disp["reasons"]).encode("ascii", "replace")[:REASON_LEN]
    for row, rep in zip(rows, slots, strict=True):
        row["obsid"], row["revision"] = info["obsid"], info["revision"]
        row["isdefault"] = int(meta.get("isdefault") or 0)
        row["aspect_1_id"] = int(meta.get("aspect_1_id") or info.get("aspect_1_id") or -1)
        row["used"] = 1 if rep["type"] == "FID" else int(rep.get("cel_loc_flag", 0))
        row["vv_version"] = info["vv_version"]
        row["ap_date"] = str(meta.get("ap_date") or info.get("ap_date") or "").encode()[:21]
        for k in ("tstart", "tstop", "sim_z", "sim_z_offset", "ra_pnt", "dec_pnt", "roll_pnt"):
            row[k] = _num(info.get(k))
        row["instrument"] = str(info.get("instrument") or "").encode()[:10]
        row["slot"], row["type"], row["n_pts"] = (
            rep["slot"],
            rep["type"].encode()[:10],
            rep["n_pts"],
        )
        for k in VV_DTYPE.names[18:36]:
            row[k] = _num(None if rep.get(k) is np.ma.masked else rep.get(k))
        row["mean_aacccdpt"] = np.nan  # no engineering archive here (see README)
        row["disposition"] = disp["status"].encode()
        row["reasons"] = reasons
    return rows
