"""The files of one V&V: ``vv_report.json``, ``vv_slots.h5``, the slot plots, ``report.html``.

The per-slot residual arrays are HDF5 (one group per slot, one dataset per array; ``mag``
with its mask as ``mag_mask``), never pickle: loading a pickle from a shared archive runs
code. ``report.html`` is readable offline: inline CSS, images by relative path.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from mica.engine.digests import FOLDER_DIGESTS
from mica.engine.h5chunks import UNREADABLE

if TYPE_CHECKING:  # the report is written by Obi's methods, which import this module
    from mica.vv.core import Obi

REPORT_JSON = "vv_report.json"
SLOTS_H5 = "vv_slots.h5"
#: the root attribute of the ``vv_slots.h5`` of a folder installed with its digests
#: (`FOLDER_DIGESTS`): a folder without them then lost them
DIGESTS_ATTR = "mica_digests"


def mark_digested(folder: Path) -> None:
    """Say in the folder's ``vv_slots.h5`` that the folder is installed with its digests
    (before they are computed)."""
    with h5py.File(folder / SLOTS_H5, "r+") as h5:
        h5.attrs[DIGESTS_ATTR] = FOLDER_DIGESTS


def digests_lost(folder: Path) -> str | None:
    """Why a V&V folder without `FOLDER_DIGESTS` should have it (its ``vv_slots.h5`` says
    it was installed with it); None for a folder written without (the original's, an
    earlier version's)."""
    try:
        with h5py.File(folder / SLOTS_H5, "r") as h5:
            marked = DIGESTS_ATTR in h5.attrs
    except UNREADABLE:  # (a file its check names)
        return None
    return (
        f"has lost its {FOLDER_DIGESTS} (its {SLOTS_H5} was installed with one)" if marked else None
    )


REPORT_HTML = "report.html"

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; }
.disp { display: inline-block; padding: 0.2em 0.8em; border-radius: 4px; font-weight: bold; }
.OK { background: #c8ecc8; } .WARN { background: #fbe7a6; } .BAD { background: #f4b4b4; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #999; padding: 0.2em 0.6em; text-align: right; }
th { background: #eee; }
tr.flagBAD td { background: #fbe0e0; } tr.flagWARN td { background: #fdf3d0; }
img { max-width: 100%; border: 1px solid #ccc; margin: 0.5em 0; }
.simulated { color: #c00; border: 2px solid #c00; padding: 0.3em 0.6em; font-weight: bold;
             display: inline-block; border-radius: 4px; }
.legend { font-size: 0.9em; color: #444; max-width: 60em; }
"""
_COLUMNS = ("slot", "type", "id_status", "n_pts", "dy_med", "dz_med", "dy_rms", "dz_rms",
            "rad_off", "frac_dy_big", "frac_dz_big", "mag_med")  # fmt: skip
#: The column of each slot's own V&V result, after ``id_status`` (which is not that result).
VV_COLUMN = "V&V"
_TABLE_LEGEND = (
    "id_status: the star's identification by the on-board software, from the aspect L1 "
    "props file (GOOD: identified); it is not the V&V's result. V&V: the slot's residuals "
    "against the V&V limits (OK, or WARN or BAD as the reasons above say; those rows are "
    "shaded). dy, dz: arcsec; mag_med: ACA magnitude."
)


def _default(value: Any) -> Any:
    if value is np.ma.masked:
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """Masked values -> None, NaN -> None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is np.ma.masked:
        return None
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def write_json(info: dict[str, Any], folder: Path) -> Path:
    """The info dict as ``vv_report.json`` (sorted keys, indent 4)."""
    path = folder / REPORT_JSON
    path.write_text(json.dumps(_clean(info), sort_keys=True, indent=4, default=_default))
    return path


def write_slots(obi: Obi, folder: Path) -> Path:
    """The combined residual arrays of every slot as ``vv_slots.h5``."""
    path = folder / SLOTS_H5
    with h5py.File(path, "w") as h5:
        for slot, data in sorted(obi.all_slot_data.items()):
            grp = h5.create_group(str(slot))
            for key in obi.SLOT_KEYS:
                value = data[key]
                if key == "mag":
                    grp.create_dataset("mag_mask", data=np.ma.getmaskarray(value))
                    value = np.ma.getdata(value)
                grp.create_dataset(
                    key, data=np.asarray(value), compression="gzip", compression_opts=1
                )
        sim = h5.create_group("sim")
        for key, value in obi.sim_data.items():
            sim.create_dataset(key, data=value, compression="gzip", compression_opts=1)
    return path


def read_slots(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``vv_slots.h5`` back as ``{slot: {key: array}}`` (``mag`` a masked array)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as h5:
        for name, grp in h5.items():
            arrays = {k: grp[k][()] for k in grp}
            if "mag_mask" in arrays:
                arrays["mag"] = np.ma.masked_array(arrays["mag"], mask=arrays.pop("mag_mask"))
            out[name] = arrays
    return out


def _fmt(value: Any) -> str:
    if value is None or value is np.ma.masked:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def _when(seconds: Any) -> str:
    """A CXC time as its date, with the seconds after it (as the JSON has them)."""
    if seconds is None or seconds is np.ma.masked:
        return "&ndash;"
    from mica.time import to_date

    return f"{to_date(float(seconds))} ({float(seconds):.3f} CXC s)"


def slot_verdicts(disposition: dict[str, Any], slots: Any) -> dict[int, str]:
    """Each slot's own V&V result: BAD or WARN where the disposition names it, else OK."""
    verdicts = {int(s): "OK" for s in slots}
    verdicts |= {int(s): "WARN" for s in disposition["warn_slots"]}
    verdicts |= {int(s): "BAD" for s in disposition["bad_slots"]}
    return verdicts


def write_html(
    info: dict[str, Any], folder: Path, images: list[str], simulated: bool = False
) -> Path:
    """``report.html``: the disposition and its reasons, the observation's dates, the
    per-slot table (each slot's V&V result beside its ``id_status``, and what they mean),
    the plots; a "SIMULATED DATA" line at the top when the data are ``simulated``."""
    disp = info["disposition"]
    status = disp["status"]
    verdicts = slot_verdicts(disp, info["slots"])
    rows = []
    for key in sorted(info["slots"], key=int):
        rep = info["slots"][key]
        verdict = verdicts[int(key)]
        cls = f' class="flag{verdict}"' if verdict != "OK" else ""
        cells = "".join(f"<td>{_fmt(rep.get(c))}</td>" for c in _COLUMNS[:3])
        cells += f'<td class="vv">{verdict}</td>'
        cells += "".join(f"<td>{_fmt(rep.get(c))}</td>" for c in _COLUMNS[3:])
        rows.append(f"<tr{cls}>{cells}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (*_COLUMNS[:3], VV_COLUMN, *_COLUMNS[3:]))
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in disp["reasons"]) or "<li>none</li>"
    errors = "".join(f"<li>{html.escape(e)}</li>" for e in info["errors"]) or "<li>none</li>"
    sim = info["sim"]
    sim_rows = "".join(f"<tr><th>{k}</th><td>{_fmt(sim[k])}</td></tr>" for k in sorted(sim))
    imgs = "".join(
        f'<h3>{html.escape(Path(name).stem)}</h3><img src="{html.escape(name)}" alt="{name}">'
        for name in images
    )
    banner = (
        '<p id="simulated" class="simulated">SIMULATED DATA: this V&amp;V is of the simulated '
        "Chandra (mica.sim), not of flight data.</p>\n"
        if simulated
        else ""
    )
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<title>V&amp;V obsid {info["obsid"]} revision {info["revision"]}</title>
<style>{_CSS}</style></head>
<body>
<h1>Aspect solution V&amp;V: obsid {info["obsid"]} revision {info["revision"]}</h1>
{banner}<p>Disposition: <span id="disposition" class="disp {status}">{status}</span></p>
<ul id="reasons">{reasons}</ul>
<p id="observation">Instrument {_fmt(info.get("instrument"))},
from {_when(info["tstart"])} to {_when(info["tstop"])} (UTC),
{len(info["intervals"])} aspect interval(s), V&amp;V version {info["vv_version"]}.</p>
<h2>Slots</h2>
<table id="slots"><tr>{head}</tr>{"".join(rows)}</table>
<p class="legend">{html.escape(_TABLE_LEGEND)}</p>
<h2>SIM drift (arcsec)</h2><table id="sim">{sim_rows}</table>
<h2>Notes</h2><ul id="errors">{errors}</ul>
<h2>Slot plots</h2>{imgs}
</body></html>
"""
    path = folder / REPORT_HTML
    path.write_text(page)
    return path


def write_report(
    obi: Obi, folder: str | Path, plots: bool = True, simulated: bool | None = None
) -> dict[str, Any]:
    """Write every file of one V&V into ``folder`` (plots and page marked when the data
    are ``simulated``; None: when the obspar says so); return the info dict."""
    from mica.vv.plots import obi_is_simulated, save_slot_plots

    if simulated is None:
        simulated = obi_is_simulated(obi)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = obi.info()
    if obi.isdefault is not None:
        info["isdefault"] = int(obi.isdefault)
    write_json(info, folder)
    write_slots(obi, folder)
    images = [p.name for p in save_slot_plots(obi, folder, simulated)] if plots else []
    write_html(info, folder, images, simulated)
    return info
