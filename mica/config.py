"""Every setting mica reads from the environment, one typed function each.

No other module reads an environment variable: they call these functions, which parse the
value and refuse a bad one with a `ConfigError` naming the variable. The variables mica sets
for its own calls or child processes (and restores) are named here too (`SETS`), so every
name is in one place; ``docs/configuration.rst`` describes them all.

Imported on the read path: keep it cheap (no heavy imports).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

from mica.errors import ConfigError

#: The archive root (`archive_root`).
ARCHIVE = "MICA_ARCHIVE"
#: Worker processes validating files during an ingest (`workers`).
WORKERS = "MICA_WORKERS"
#: Base URL of the Chandra Data Archive, or of a mirror (`cda_url`).
CDA_URL = "MICA_CDA_URL"
#: Seconds one CDA file download may take (`cda_file_deadline`).
CDA_FILE_DEADLINE = "MICA_CDA_FILE_DEADLINE"
#: Seconds all CDA downloads of one update may take (`cda_run_deadline`).
CDA_RUN_DEADLINE = "MICA_CDA_RUN_DEADLINE"
#: Largest decompressed size of a CDA file, in bytes (`cda_max_file_bytes`).
CDA_MAX_FILE_BYTES = "MICA_CDA_MAX_FILE_BYTES"
#: Attempts of one `mica sync` transfer before it fails (`sync_retries`).
SYNC_RETRIES = "MICA_SYNC_RETRIES"
#: Seconds of the first pause between `mica sync` attempts, doubled each time (`sync_backoff`).
SYNC_BACKOFF = "MICA_SYNC_BACKOFF"
#: Seconds a `mica sync` request may wait for the server's next bytes (`sync_timeout`).
SYNC_TIMEOUT = "MICA_SYNC_TIMEOUT"
#: The simulated aspect L1 products keep every N-th sample (`sim_l1_decimate`).
SIM_L1_DECIMATE = "MICA_SIM_L1_DECIMATE"
#: Multiplier of the simulated aspect faults' rates (`sim_fault_scale`).
SIM_FAULT_SCALE = "MICA_SIM_FAULT_SCALE"
#: The umask of what the archive writes, e.g. ``002`` for a shared archive (`umask`).
UMASK = "MICA_UMASK"
#: "Now" for the simulated upstream and for ``None`` times, as in CxoTime (`now_override`).
NOW = "CXOTIME_NOW"
#: What a reader does with a damaged store chunk (`store_damaged`).
STORE_DAMAGED = "MICA_STORE_DAMAGED"
#: blosc's thread count, set to 1 during mica's own decompressions (and restored).
BLOSC_NTHREADS = "BLOSC_NTHREADS"
#: glibc's trim threshold, which dask's nanny sets; kept out of the workers mica starts.
MALLOC_TRIM_THRESHOLD = "MALLOC_TRIM_THRESHOLD_"

#: The variables mica only sets (for its own calls or child processes), never reads as settings.
SETS = (BLOSC_NTHREADS, MALLOC_TRIM_THRESHOLD)
#: Every variable named here: the settings read by the functions below, then `SETS`.
VARIABLES = (
    ARCHIVE,
    WORKERS,
    CDA_URL,
    CDA_FILE_DEADLINE,
    CDA_RUN_DEADLINE,
    CDA_MAX_FILE_BYTES,
    SYNC_RETRIES,
    SYNC_BACKOFF,
    SYNC_TIMEOUT,
    SIM_L1_DECIMATE,
    SIM_FAULT_SCALE,
    UMASK,
    NOW,
    STORE_DAMAGED,
    *SETS,
)


def _text(var: str) -> str | None:
    """The variable's value, None when unset or empty."""
    return os.environ.get(var) or None


def _number(var: str, kind: type[int] | type[float]) -> int | float | None:
    """The variable as a ``kind`` (None when unset or empty); `ConfigError` if not one."""
    text = _text(var)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{var}={text!r} is not {what}") from None


def _positive(var: str, kind: type[int] | type[float]) -> int | float | None:
    value = _number(var, kind)
    if value is not None and value <= 0:
        raise ConfigError(f"{var}: the limit must be positive (got {value})")
    return value


def archive_root(data_root: str | os.PathLike | None = None) -> Path:
    """The archive root folder (it holds one sub-folder per product), as an absolute path.

    ``data_root`` when given, else ``MICA_ARCHIVE``, else a per-user data folder
    (``platformdirs``). ``MICA_ARCHIVE`` may be a colon-separated list as in the original;
    the first element is used (the original's comment said first but its code took the
    last). A relative folder is taken from the current folder now, so the paths readers
    return stay absolute (and valid after a ``chdir``). Any folder is accepted: one holding
    no archive is reported by the reader.

    Raises
    ------
    ConfigError
        When the root is an existing file, not a folder (the message names it, and
        ``MICA_ARCHIVE`` when it came from there).
    """
    if data_root is not None:
        return _folder(Path(data_root), "the archive folder")
    env = _text(ARCHIVE)
    if env:
        first = [p for p in env.split(os.pathsep) if p]
        if first:
            return _folder(Path(first[0]), f"{ARCHIVE}={env!r}")
    return Path(user_data_dir("mica", appauthor=False)) / "archive"


def archive_path_setting() -> str | None:
    """``MICA_ARCHIVE`` as set: the original's colon-separated list of archive roots (None
    when unset); `archive_root` uses its first element."""
    return _text(ARCHIVE)


def _folder(path: Path, what: str) -> Path:
    """``path`` made absolute (``~`` expanded, ``..`` resolved as text); `ConfigError` when
    it is an existing file, not a folder."""
    path = Path(os.path.abspath(path.expanduser()))
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{what}: {path} is a file, not a folder; point it at the archive folder "
            "(the one holding aca0, asp1, obspar, ...)"
        )
    return path


def workers() -> int | None:
    """``MICA_WORKERS``: worker processes validating files during an ingest.

    None when unset (the caller's default: one per CPU, at most 4); a value below 1 counts
    as 1; not an integer: `ConfigError`.
    """
    value = _number(WORKERS, int)
    return None if value is None else max(1, value)


def cda_url() -> str | None:
    """``MICA_CDA_URL``: base URL of the Chandra Data Archive's services and tree.

    None when unset (the public archive); another URL is a mirror or a test server, whose
    files tell whether they are real or simulated. The trailing ``/`` is dropped; the URL is
    not checked here (one that does not answer fails the update with a `SourceError`).
    """
    url = (_text(CDA_URL) or "").rstrip("/")
    return url or None


def cda_file_deadline() -> float | None:
    """``MICA_CDA_FILE_DEADLINE``: seconds one CDA file download may take, retries included.

    None when unset (the source's default); not a positive number: `ConfigError`.
    """
    return _positive(CDA_FILE_DEADLINE, float)


def cda_run_deadline() -> float | None:
    """``MICA_CDA_RUN_DEADLINE``: seconds all CDA downloads of one update may take.

    None when unset (the source's default); not a positive number: `ConfigError`.
    """
    return _positive(CDA_RUN_DEADLINE, float)


def cda_max_file_bytes() -> int | None:
    """``MICA_CDA_MAX_FILE_BYTES``: largest decompressed size of a CDA file, in bytes.

    A file decompressing to more is refused. None when unset (the source's default); not a
    positive integer: `ConfigError`.
    """
    return _positive(CDA_MAX_FILE_BYTES, int)


def sync_retries() -> int:
    """``MICA_SYNC_RETRIES``: attempts of one `mica sync` transfer (a file, a manifest) after
    the first, on server errors (HTTP 5xx), timeouts, dropped connections and short bodies.

    Default 4; not a positive integer: `ConfigError`. Each attempt resumes what came.
    """
    value = _positive(SYNC_RETRIES, int)
    return 4 if value is None else int(value)


def sync_backoff() -> float:
    """``MICA_SYNC_BACKOFF``: seconds of the first pause between `mica sync` attempts, doubled
    at each further attempt (with a little jitter) and capped at 30 s.

    Default 0.5; not a positive number: `ConfigError`.
    """
    value = _positive(SYNC_BACKOFF, float)
    return 0.5 if value is None else float(value)


def sync_timeout() -> float:
    """``MICA_SYNC_TIMEOUT``: seconds a `mica sync` request may wait to connect or for the
    server's next bytes before the attempt counts as failed (and is retried).

    Default 30; not a positive number: `ConfigError`.
    """
    value = _positive(SYNC_TIMEOUT, float)
    return 30.0 if value is None else float(value)


def sim_l1_decimate(default: int = 1) -> int:
    """``MICA_SIM_L1_DECIMATE``: the simulated aspect L1 products keep every N-th sample.

    ``default`` when unset: 1 (the real cadence) for the simulated source, 4 for the demo's
    and the documentation's archives. A value below 1 counts as 1; not an integer:
    `ConfigError`.
    """
    value = _number(SIM_L1_DECIMATE, int)
    return default if value is None else max(1, value)


def sim_fault_scale() -> float:
    """``MICA_SIM_FAULT_SCALE``: multiplier of the simulated aspect faults' rates.

    Default 1; the simulator caps the product of scale and rates so that every obsid is
    faulty at most. Not a number: `ConfigError`.
    """
    value = _number(SIM_FAULT_SCALE, float)
    return 1.0 if value is None else value


def umask() -> int | None:
    """``MICA_UMASK``: the umask of the files and folders an update writes, in octal.

    None when unset (the process's umask). For an archive shared by a group, e.g. ``002``:
    the group reads what the updater writes, and a group's service account may update it.
    A rewritten file keeps the mode of the file it replaces. Not an octal number in
    0..777: `ConfigError`.
    """
    text = _text(UMASK)
    if text is None:
        return None
    digits = text.strip().lower().removeprefix("0o")
    try:
        value = int(digits, 8)
    except ValueError:
        raise ConfigError(f"{UMASK}={text!r} is not an octal umask (e.g. 002)") from None
    if not 0 <= value <= 0o777:
        raise ConfigError(f"{UMASK}={text!r}: a umask is 000..777")
    return value


def now_override() -> str | None:
    """``CXOTIME_NOW``: the time that stands for "now", as in CxoTime.

    Used for ``None`` times and by the simulated upstream (what it had released at that
    date). None when unset (the clock's time). Parsed by `mica.time` when "now" is first
    asked for: a value it cannot parse raises a `ConfigError` naming the variable there.
    """
    return _text(NOW)


#: The values of ``MICA_STORE_DAMAGED`` (`store_damaged`), the default first.
STORE_DAMAGED_MODES = ("fallback", "raise")


def store_damaged() -> str:
    """``MICA_STORE_DAMAGED``: what a reader does with a store chunk that fails its checks
    (a block not matching its digest, another chunk's file in its place).

    ``fallback`` (the default, also when unset): the reader reads that partition from the
    archived FITS files instead (the same answer as ``use_store=False``) and logs once which
    command mends the chunk. ``raise``: the read raises `DamagedStoreError` naming the chunk.
    Any other value: `ConfigError`.
    """
    value = (_text(STORE_DAMAGED) or STORE_DAMAGED_MODES[0]).strip().lower()
    if value not in STORE_DAMAGED_MODES:
        choices = " or ".join(STORE_DAMAGED_MODES)
        raise ConfigError(f"{STORE_DAMAGED}={value!r}: give {choices}")
    return value
