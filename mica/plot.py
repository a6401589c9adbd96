"""Plot against Chandra time with a date axis that reads well from hours to decades."""

from __future__ import annotations

from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from mica.time import CxoTimeLike, conversion_scope, to_time


def cxctime2plotdate(times: CxoTimeLike) -> np.ndarray:
    """Matplotlib date numbers (days since 1970-01-01 UTC) for Chandra times."""
    with conversion_scope():
        t = to_time(
            np.atleast_1d(np.asarray(times, dtype=np.float64))
            if not isinstance(times, str)
            else times
        )
        return np.atleast_1d(t.utc.jd - 2440587.5)


def plot_cxctime(
    times: CxoTimeLike,
    y: Any,
    fmt: str = "-b",
    fig: Any = None,
    ax: Any = None,
    yerr: Any = None,
    xerr: Any = None,
    **kwargs: Any,
) -> tuple[Any, Any, Any]:
    """Plot ``y`` against Chandra ``times`` (CXC seconds or dates); returns (ticks, fig, ax).

    Uses matplotlib's AutoDateLocator with a ConciseDateFormatter, so the axis labels adapt
    from minutes within a day to years across the mission.
    """
    if ax is None:
        fig = fig or plt.gcf()
        ax = fig.gca()
    else:
        fig = ax.figure
    x = cxctime2plotdate(times)
    y = np.ma.asarray(y)
    if yerr is not None or xerr is not None:
        ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt=fmt, **kwargs)
    else:
        ax.plot(x, y, fmt, **kwargs)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.xaxis_date()
    return ax.get_xticks(), fig, ax
