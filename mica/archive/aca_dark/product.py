"""ACA dark calibrations as a derived product: the replica files and the calibration folders.

The product is declared by what it needs and what it makes:

* input ``replicas``: the replica files of each calibration (``acadark<YYYYDOY>_r<n>.fits.gz``,
  format in `mica.sim.aca_dark`), delivered by a source (`DARK`, a `FileProduct` that is not
  indexed: the archive holds the combined calibrations);
* input ``ccd_temp``: the CCD temperatures from the L0 archive (``aca0``), header-3
  ``ccd_temp`` within `HDR3_PAD` of each replica (else L0 ``TEMPCCD``);
  `input_windows` says which L0 time ranges a calibration needs;
* output: one calibration folder ``<YYYYDOY>/`` holding ``image.fits`` and
  ``properties.json`` (`LAYOUT`, a `mica.engine.calib_layout.CalibLayout`).

The calibration folder format (file names, image shape, ids and their dates) is defined here
and read by `mica.archive.aca_dark.dark_cal`. The computation is
`mica.archive.aca_dark.compute`, the update `mica.archive.aca_dark.update` (the registry's
``aca-dark`` entry). The product lives beside its reader and update rather than in
`mica.products` (which holds the upstream formats only): its output is made here.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from mica.config import archive_root
from mica.engine.calib_layout import CalibLayout
from mica.engine.digests import FOLDER_DIGESTS
from mica.engine.fitscheck import open_checked
from mica.engine.product import FileProduct, RejectedFile
from mica.time import SECONDS_PER_DAY, CxoTimeLike, to_date, to_secs

# The calibration folder format (read by `mica.archive.aca_dark.dark_cal`, written by the
# update): ``<YYYYDOY>/image.fits`` (1024x1024 float32) and ``properties.json``.
DARK_ID_RE = re.compile(r"^[12]\d{6}$")
IMAGE_SHAPE = (1024, 1024)
IMAGE_NAME = "image.fits"
PROPS_NAME = "properties.json"

GUESS_BEFORE = "2000:001:00:00:00.000"  # the original guessed -10 C before this
HDR3_PAD = 600.0  # s before and after a replica searched for header-3 ccd_temp


def date_to_dark_id(date: CxoTimeLike) -> Any:
    """``YYYYDOY`` id of the UTC day holding ``date`` (array in -> ``<U7`` array out)."""
    dates = to_date(date)
    if isinstance(dates, str):
        return dates[:4] + dates[5:8]
    arr = np.asarray(dates)
    return np.char.add(_slice(arr, 0, 4), _slice(arr, 5, 8)).astype("<U7")


def _slice(arr: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.array([s[i:j] for s in arr.ravel()]).reshape(arr.shape)


def dark_id_to_date(dark_id: Any) -> Any:
    """``'YYYY:DOY'`` of an id (array in -> ``<U8`` array out)."""
    if np.ndim(dark_id) == 0:
        text = str(dark_id)
        return text[:4] + ":" + text[4:]
    arr = np.asarray(dark_id).astype(str)
    return np.char.add(np.char.add(_slice(arr, 0, 4), ":"), _slice(arr, 4, 7)).astype("<U8")


def header_length(fh: Any, path: Path) -> int:
    """The length of a calibration image's primary header, checking it is a dark map
    (`read_header`)."""
    return read_header(fh, path)[0]


def read_header(fh: Any, path: Path) -> tuple[int, dict[str, str]]:
    """The length of a calibration image's primary header and its cards (keyword -> value
    text), checking it is a dark map.

    Parameters
    ----------
    fh : binary file
        The image file, positioned at its start (read up to the end of the header).
    path : Path
        The file's path, for the messages.

    Returns
    -------
    int
        Bytes of the primary header (a multiple of 2880): where the image data start.
    dict
        Its cards' values as written (strings keep their quotes).

    Raises
    ------
    OSError
        The header is truncated, has no END card within 100 blocks, or does not describe a
        1024x1024 float32 image.
    """
    cards: dict[str, str] = {}
    offset = 0
    while True:
        block = fh.read(2880)
        if len(block) < 2880:
            raise OSError(f"{path}: truncated FITS header")
        offset += 2880
        text = block.decode("ascii", errors="replace")
        for k in range(0, 2880, 80):
            card = text[k : k + 80]
            key = card[:8].strip()
            if key == "END":
                want = {"SIMPLE": "T", "BITPIX": "-32", "NAXIS": "2"}
                want |= {"NAXIS1": "1024", "NAXIS2": "1024"}
                bad = [f"{k}={cards.get(k)}" for k, v in want.items() if cards.get(k) != v]
                if bad:
                    raise OSError(f"{path}: not a 1024x1024 float32 dark map ({', '.join(bad)})")
                return offset, cards
            if card[8:10] == "= ":
                cards[key] = card[10:].split("/")[0].strip()
        if offset > 2880 * 100:
            raise OSError(f"{path}: no END card in the primary header")


@functools.lru_cache(maxsize=4096)
def id_day_secs(dark_id: str) -> float:
    """The start (00:00) of a calibration id's day.

    Parameters
    ----------
    dark_id : str
        A ``YYYYDOY`` calibration id.

    Returns
    -------
    float
        CXC seconds of 00:00 UTC of that day (cached: ids repeat across replicas and plans).
    """
    return float(to_secs(dark_id_to_date(dark_id)))


class DarkReplicaProduct(FileProduct):
    """Dark-calibration replica files, delivered by sources; not indexed (the archive holds
    the combined calibrations). A file's name time is 00:00 of its calibration's day."""

    name = "aca-dark"
    subdir = "aca_dark"
    extname = "PRIMARY"
    filename_re = re.compile(r"acadark([12]\d{6})_r(\d{1,2})\.fits\.gz")
    index_columns = ()
    source_lookback = 0.0  # the name holds the calibration's day: nothing starts earlier

    def name_time(self, name: str) -> float:
        return id_day_secs(self.filename_re.fullmatch(self.archive_name(name)).group(1))

    def folder(self, row: dict[str, Any]) -> str:
        return row["dark_id"]

    def describe(self, name: str, hdus: fits.HDUList) -> dict[str, Any]:
        """Check one replica's structure; the row carries its image (native float32)."""
        match = self.filename_re.fullmatch(name)
        if match is None:
            raise RejectedFile(name, f"name does not match {self.filename_re.pattern}")
        hdu = hdus[0]
        h = hdu.header
        if h.get("BITPIX") != -32 or hdu.data is None or hdu.data.shape != IMAGE_SHAPE:
            shape = None if hdu.data is None else hdu.data.shape
            raise RejectedFile(
                name,
                f"primary HDU is not a 1024x1024 float32 image (BITPIX "
                f"{h.get('BITPIX')}, shape {shape})",
            )
        try:
            row = {
                "filename": name,
                "dark_id": str(h["DARKID"]).strip(),
                "replica": int(h["REPLICA"]),
                "nreplica": int(h["NREPLICA"]),
                "tstart": float(h["TSTART"]),
                "tstop": float(h["TSTOP"]),
                "integ": float(h["INTEG"]),
                "ra": float(h["RA_PNT"]),
                "dec": float(h["DEC_PNT"]),
            }
        except (KeyError, ValueError, TypeError) as err:
            raise RejectedFile(name, f"bad or missing header keyword ({err})") from err
        if row["dark_id"] != match.group(1) or row["replica"] != int(match.group(2)):
            raise RejectedFile(
                name,
                f"header says calibration {row['dark_id']} replica {row['replica']}, "
                "not what the name says",
            )
        if not 1 <= row["replica"] <= row["nreplica"]:
            raise RejectedFile(name, f"REPLICA {row['replica']} outside 1..{row['nreplica']}")
        if not row["tstop"] > row["tstart"] or not row["integ"] > 0:
            raise RejectedFile(name, "TSTOP not after TSTART or INTEG not positive")
        image = np.asarray(hdu.data, dtype=np.float32)  # native byte order
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise RejectedFile(name, f"{bad} non-finite pixel values")
        row["image"] = image
        return row


DARK = DarkReplicaProduct()


def input_windows(replicas: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The L0 time ranges (CXC s) the CCD temperatures of one calibration read: header-3
    ``ccd_temp`` within `HDR3_PAD` of its replicas; none before `GUESS_BEFORE` (guessed)."""
    t_guess = to_secs(GUESS_BEFORE)
    reps = [r for r in replicas if r["tstart"] >= t_guess]
    if not reps:
        return []
    return [(min(r["tstart"] for r in reps) - HDR3_PAD, max(r["tstop"] for r in reps) + HDR3_PAD)]


def default_l0_root(data_root: str | Path | None = None) -> Path:
    """The L0 archive beside the dark archive (``<archive>/aca0``)."""
    if data_root is not None:
        return Path(data_root).expanduser().parent / "aca0"
    return archive_root() / "aca0"


#: the card of a calibration image written with its folder's digests (`FOLDER_DIGESTS`):
#: a folder without them then lost them
DIGESTS_CARD = "DIGESTS"


#: the problem of a calibration folder whose `FOLDER_DIGESTS` is gone
LOST_DIGESTS = f"has lost its {FOLDER_DIGESTS} (its {IMAGE_NAME} was written with one)"


def digests_lost(folder: Path) -> str | None:
    """`LOST_DIGESTS` when ``folder`` has no `FOLDER_DIGESTS` but its image says it was
    written with one; None otherwise (an image that does not read is its reader's problem)."""
    try:
        with open(folder / IMAGE_NAME, "rb") as fh:
            cards = read_header(fh, folder / IMAGE_NAME)[1]
    except OSError:
        return None
    return LOST_DIGESTS if DIGESTS_CARD in cards else None


def calibration_problem(folder: Path, verify_data: bool = False) -> str | None:
    """Why an archived calibration folder is not whole (None when it is)."""
    dark_id = folder.name
    image, props_path = folder / IMAGE_NAME, folder / PROPS_NAME
    if not folder.is_dir():
        return "not a folder"
    for path in (image, props_path):
        if not path.is_file():
            return f"no {path.name}"
    try:
        props = json.loads(props_path.read_text())
    except (OSError, ValueError) as err:
        return f"{PROPS_NAME} unreadable ({err})"
    if not isinstance(props, dict):
        return f"{PROPS_NAME} does not hold a JSON object"
    if not isinstance(props.get("ccd_temp"), (int, float)):
        return f"{PROPS_NAME} has no numeric ccd_temp"
    datestart = str(props.get("datestart", ""))
    named = props.get("id") or datestart[:4] + datestart[5:8]
    if named and named != dark_id:
        return f"{PROPS_NAME} describes calibration {named}"
    try:
        with open(image, "rb") as fh:
            header, cards = read_header(fh, image)
    except OSError as err:
        return str(err)
    if DIGESTS_CARD in cards and not (folder / FOLDER_DIGESTS).exists():
        return LOST_DIGESTS
    size = header + -(-4 * IMAGE_SHAPE[0] * IMAGE_SHAPE[1] // 2880) * 2880
    if image.stat().st_size != size:
        return f"{IMAGE_NAME} is {image.stat().st_size} bytes, expected {size}"
    if verify_data:
        try:
            hdus, _ = open_checked(image, f"{dark_id}/{IMAGE_NAME}", "PRIMARY")
            hdus.close()
        except RejectedFile as err:
            return err.problem
    return None


def _rebuild_hint(dark_id: str) -> str:
    day = dark_id_to_date(dark_id)
    next_day = to_date(to_secs(day) + SECONDS_PER_DAY)[:8]
    return f"`mica update aca-dark --start {day} --stop {next_day}` rebuilds it"


LAYOUT = CalibLayout("aca-dark", DARK_ID_RE, calibration_problem, _rebuild_hint, staging=".staging")
