"""The original's acquisition-statistics updater: ``update(opt)`` and ``main()``.

Both run ``mica update acq-stats`` (the derived product `mica.stats.acq_product`, through
`mica.engine.derived.update_derived`, the engine's runner): ``opt.obsid`` computes that
observation (again, if it is in the table), otherwise the observations archived since the
newest one in the table; ``opt.check_missing`` also retries the ones recorded as failed or
missing. The table is ``table_file`` (`mica.stats.acq_stats.TABLE_FILE`, read at each
access); assigning another path whose name is ``acq_stats.h5`` writes that table instead,
from the inputs of the archive in force. ``opt.email``: the original mailed acquisition
anomalies; here nothing is sent (a warning says so).

The original's per-observation internals (``calc_stats``, ``table_acq_stats``,
``_save_acq_stats``, ...) read kadi and the engineering archive: they are not provided; the
update computes and stores whole observations.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mica.common import computed_attributes
from mica.engine.report import UpdateReport
from mica.errors import MicaError
from mica.stats import acq_stats

__all__ = ["StatsOptionError", "get_options", "main", "run_update", "update"]

logger = logging.getLogger("star_stats")


class StatsOptionError(MicaError, ValueError):
    """An option of the original's updater that this archive cannot honour."""


def run_update(
    product: Any,
    table_file: str | Path,
    obsid: Any = None,
    check_missing: bool = False,
    start: Any = None,
    stop: Any = None,
) -> UpdateReport:
    """``mica update <product>`` into ``table_file``, through the engine's runner
    (`mica.engine.derived.update_derived`), with the inputs of the archive in force.

    Parameters
    ----------
    product : DerivedProduct
        The statistics product (``ACQ_STATS``, ``GUIDE_STATS``).
    table_file : str or Path
        The table to write; its name must be the product's (``acq_stats.h5``, ...).
    obsid : int or str, optional
        One observation to compute (again).
    check_missing : bool
        Also retry the observations recorded as failed or missing.
    start, stop : time, optional
        Limit the observations by time.

    Returns
    -------
    UpdateReport
        What was computed; its summary is logged (failures are recorded in the table and
        listed by ``mica check``, as the original logged and skipped them).
    """
    from mica.config import archive_root
    from mica.engine.derived import update_derived

    path = Path(table_file)
    if path.name != product.table_name:
        raise StatsOptionError(
            f"table file {path}: the {product.name} table is named {product.table_name}; "
            f"give a path ending in {product.table_name} (its folder holds the table)"
        )
    report = update_derived(
        product,
        data_root=path.parent,
        archive=archive_root(),
        start=start,
        stop=stop,
        obsids=[int(obsid)] if obsid else None,
        check_missing=bool(check_missing),
    )
    logger.info(report.summary())
    return report


def get_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The original's command-line options (``--check-missing``, ``--obsid``, ``--email``)."""
    parser = argparse.ArgumentParser(description="Update acq stats table")
    parser.add_argument(
        "--check-missing",
        action="store_true",
        help="check for missing observations in table and reprocess",
    )
    parser.add_argument("--obsid", help="specific obsid to process (default: the new ones)")
    parser.add_argument(
        "--email", action="append", help="accepted for compatibility: no e-mail is sent"
    )
    return parser.parse_args(argv)


def update(opt: argparse.Namespace) -> UpdateReport:
    """Update the table with the options of `get_options` (see the module docstring)."""
    if getattr(opt, "email", None):
        logger.warning("acquisition anomalies are not e-mailed here (--email is ignored)")
    from mica.stats.acq_product import ACQ_STATS

    table = globals().get("table_file") or acq_stats.table_path()
    return run_update(
        ACQ_STATS,
        table,
        obsid=getattr(opt, "obsid", None),
        check_missing=getattr(opt, "check_missing", False),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The original's script: parse the options, update the table."""
    update(get_options(argv))


__getattr__ = computed_attributes(__name__, {"table_file": lambda: str(acq_stats.table_path())})
