# Licensed under a 3-clause BSD style license - see LICENSE.rst
# From sot/mica mica/stats/tests/test_guide_stats.py; substitutions marked "substitution:"
# (tests/original/README.md lists them).
# ruff: noqa  (the original's code as it was written; only the substitutions differ)
import tempfile
import os
import numpy as np
import pytest

from mica.stats import guide_stats  # substitution: were relative imports
from mica.stats import update_guide_stats

# substitution: the fixture archive (conftest.py) holds the table; evaluated at import, the
# original's os.path.exists(guide_stats.TABLE_FILE) would see no archive yet
HAS_GS_TABLE = True

INTERNALS = (
    "calc_stats/table_gui_stats/_save_gui_stats (kadi and engineering-archive internals) are "
    "not provided: update(opt) computes and stores whole observations"
)


@pytest.mark.skipif('not HAS_GS_TABLE', reason='Test requires guide stats table')
def test_read_stats():
    stats = guide_stats.get_stats()
    # substitution: this archive's obsid 10369 and its slot 5 BOT 453507673 for 5438 /
    # 839386400 (the isclose lines assert nothing: their values stay the original's)
    slot = stats[(stats['obsid'] == 10369) & (stats['slot'] == 5)][0]
    np.isclose(slot['dy_std'], 0.16008819321078668)
    np.isclose(slot['dz_std'], 0.23807435722775061)
    # Fetch the stats for the slot 5 BOT by id
    single = guide_stats.get_star_stats(453507673)
    np.isclose(single[single['obsid'] == 10369][0]['dy_std'], 0.16008819321078668)


# substitution: the fixture archive holds obspars (evaluated at import, see above)
HAS_OBSPAR_ARCHIVE = True


@pytest.mark.skip(reason=INTERNALS)
@pytest.mark.skipif('not HAS_OBSPAR_ARCHIVE', reason='Test requires mica obspars')
def test_calc_stats():
    update_guide_stats.calc_stats(17210)


@pytest.mark.skip(reason=INTERNALS)
@pytest.mark.skipif('not HAS_OBSPAR_ARCHIVE', reason='Test requires mica obspars')
def test_calc_stats_with_bright_trans():
    s = update_guide_stats.calc_stats(17472)
    # Assert that the std on the slot 7 residuals are reasonable
    # even in this obsid that had a transition to BRIT
    assert s[1][7]['dr_std'] < 1


@pytest.mark.skip(reason=INTERNALS)
@pytest.mark.skipif('not HAS_OBSPAR_ARCHIVE', reason='Test requires mica obspars')
@pytest.mark.filterwarnings('ignore: object name')
def test_make_gui_stats():
    """
    Save the guide stats for one obsid into a newly-created table
    """
    # Get a temporary file, but then delete it, because _save_acq_stats will only
    # make a new table if the supplied file doesn't exist
    fh, fn = tempfile.mkstemp(suffix='.h5')
    os.unlink(fn)
    obsid = 20001
    obsid_info, gui, star_info, catalog, temp = update_guide_stats.calc_stats(obsid)
    t = update_guide_stats.table_gui_stats(obsid_info, gui, star_info, catalog, temp)
    update_guide_stats._save_gui_stats(t, table_file=fn)
    os.unlink(fn)
