"""File names of the dark-current calibrations, as the original's templates.

Each value is a path template relative to a base folder, ``{{dark_cal.id}}`` standing for a
calibration id (``YYYYDOY``); `mica.archive.aca_dark.dark_cal.MICA_FILES` resolves them under
this archive's root. ``MICA_FILES`` names this archive's layout (``<id>/image.fits``,
``<id>/properties.json``: the entry plus its extension); ``SKA_FILES`` the Ska runtime's
layout that the original could also read (kept for reference, not read here).
"""

from __future__ import annotations

__all__ = ["MICA_FILES", "SKA_FILES"]

SKA_FILES = {
    "dark_cals_dir": "data/aca_dark_cal",
    "dark_cal_dir": "data/aca_dark_cal/{{dark_cal.id}}",
    "dark_image": "data/aca_dark_cal/{{dark_cal.id}}/imd",
    "dark_info": "data/aca_dark_cal/{{dark_cal.id}}/info",
}

MICA_FILES = {
    "dark_cals_dir": "aca_dark",
    "dark_cal_dir": "aca_dark/{{dark_cal.id}}",
    "dark_image": "aca_dark/{{dark_cal.id}}/image",
    "dark_props": "aca_dark/{{dark_cal.id}}/properties",
}
