"""The original's guide-statistics updater: ``update(opt)`` and ``main()``.

Both run ``mica update guide-stats`` (`mica.stats.guide_product`, through the engine's
runner, see `mica.stats.update_acq_stats.run_update`): ``opt.obsid`` computes that
observation, otherwise those archived since the newest one in the table (``opt.start`` /
``opt.stop`` limit them); ``opt.check_missing`` also retries the failed or missing ones.
``opt.datafile`` is the table to write: by default (None) the archive's
(`mica.stats.guide_stats.TABLE_FILE`); another path must be named ``guide_stats.h5`` (the
original's default ``gs.h5`` in the working folder is refused with that advice).

The original's per-observation internals (``calc_stats``, ``table_gui_stats``,
``_save_gui_stats``, ...) read kadi and the engineering archive: they are not provided.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mica.engine.report import UpdateReport
from mica.stats import guide_stats
from mica.stats.update_acq_stats import run_update

__all__ = ["get_options", "main", "update"]


def get_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The original's options (``--check-missing``, ``--obsid``, ``--start``, ``--stop``,
    ``--datafile``; the last defaults to the archive's table)."""
    parser = argparse.ArgumentParser(description="Update guide stats table")
    parser.add_argument(
        "--check-missing",
        action="store_true",
        help="check for missing observations in table and reprocess",
    )
    parser.add_argument("--obsid", help="specific obsid to process (default: the new ones)")
    parser.add_argument("--start", help="start time for processing")
    parser.add_argument("--stop", help="stop time for processing")
    parser.add_argument(
        "--datafile", default=None, help="table file (default: <archive>/guide_stats/...)"
    )
    return parser.parse_args(argv)


def update(opt: argparse.Namespace) -> UpdateReport:
    """Update the table with the options of `get_options` (see the module docstring)."""
    from mica.stats.guide_product import GUIDE_STATS

    return run_update(
        GUIDE_STATS,
        getattr(opt, "datafile", None) or guide_stats.table_path(),
        obsid=getattr(opt, "obsid", None),
        check_missing=getattr(opt, "check_missing", False),
        start=getattr(opt, "start", None),
        stop=getattr(opt, "stop", None),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The original's script: parse the options, update the table."""
    update(get_options(argv))
