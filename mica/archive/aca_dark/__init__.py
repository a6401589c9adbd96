"""ACA dark-current calibrations: archive reader, temperature scaling and dark-current model.

As the original ``mica.archive.aca_dark``: the reader functions of ``dark_cal`` and the
scaling functions are available from this package directly. Sub-modules: ``dark_cal``
(reader), ``temp_scale`` (temperature scaling), ``dark_model`` (the smoothed broken power-law
dark-current histogram model and star acquisition probabilities), ``update`` (the updater,
`mica update aca-dark`).
"""

from . import dark_cal, dark_model, temp_scale
from .dark_cal import (
    MissingDataError,
    dark_id_to_date,
    date_to_dark_id,
    get_dark_cal_dirs,
    get_dark_cal_id,
    get_dark_cal_ids,
    get_dark_cal_image,
    get_dark_cal_props,
    get_dark_cal_props_table,
)
from .dark_model import get_warm_fracs, synthetic_dark_image
from .temp_scale import DARK_SCALE_4C, dark_temp_scale, dark_temp_scale_img

__all__ = [
    "DARK_SCALE_4C",
    "MissingDataError",
    "dark_cal",
    "dark_id_to_date",
    "dark_model",
    "dark_temp_scale",
    "dark_temp_scale_img",
    "date_to_dark_id",
    "get_dark_cal_dirs",
    "get_dark_cal_id",
    "get_dark_cal_ids",
    "get_dark_cal_image",
    "get_dark_cal_props",
    "get_dark_cal_props_table",
    "get_warm_fracs",
    "synthetic_dark_image",
    "temp_scale",
]
