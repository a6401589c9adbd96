"""The original mica's starcheck readers, over its ``starcheck.db3`` (`mica.starcheck.starcheck`).

Examples
--------
>>> from mica import starcheck
>>> starcheck.get_starcheck_catalog  # doctest: +ELLIPSIS
<function get_starcheck_catalog at ...>
"""

from mica.starcheck.starcheck import (
    get_att,
    get_dither,
    get_monitor_windows,
    get_mp_dir,
    get_starcat,
    get_starcheck_catalog,
    get_starcheck_catalog_at_date,
)

__all__ = [
    "get_att",
    "get_dither",
    "get_monitor_windows",
    "get_mp_dir",
    "get_starcat",
    "get_starcheck_catalog",
    "get_starcheck_catalog_at_date",
]
