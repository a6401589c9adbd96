# Licensed under a 3-clause BSD style license - see LICENSE.rst
# From sot/mica mica/stats/tests/test_acq_stats.py; substitutions marked "substitution:"
# (tests/original/README.md lists them).
# ruff: noqa  (the original's code as it was written; only the substitutions differ)
import tempfile
import os
import pytest
from pathlib import Path

from mica.stats import update_acq_stats as acq_stats  # substitution: were relative imports
from mica.stats import acq_stats as read_acq_stats

# substitution: the fixture archive (conftest.py) holds both; evaluated at import, the
# original's Path(...).exists() would see no archive yet
HAS_OBSPAR_ARCHIVE = True
HAS_ACQ_TABLE = True

INTERNALS = (
    "calc_stats/table_acq_stats/_save_acq_stats (kadi and engineering-archive internals) are "
    "not provided: update(opt) computes and stores whole observations"
)


@pytest.mark.skipif(not HAS_ACQ_TABLE, reason='Test requires acq stats table')
def test_single_star_stats():
    # Fetch the stats for the slot 5 BOT of obsid 5438 by id
    # substitution: this archive's slot 5 BOT of obsid 10369 for 839386400 / 5438
    single = read_acq_stats.get_star_stats(453507673)
    assert single[single['obsid'] == 10369]['acqid'][0]


@pytest.mark.skip(reason=INTERNALS)
@pytest.mark.skipif(not HAS_OBSPAR_ARCHIVE, reason='Test requires mica obspars')
def test_calc_stats():
    acq_stats.calc_stats(17210)
    acq_stats.calc_stats(15175)
    acq_stats.calc_stats(4911)
    acq_stats.calc_stats(19386)


@pytest.mark.skip(reason=INTERNALS)
@pytest.mark.skipif(not HAS_OBSPAR_ARCHIVE, reason='Test requires mica obspars')
def test_make_acq_stats():
    """
    Save the acq stats for one obsid into a newly-created table
    """
    # Get a temporary file, but then delete it, because _save_acq_stats will only
    # make a new table if the supplied file doesn't exist
    fh, fn = tempfile.mkstemp(suffix='.h5')
    os.unlink(fn)
    acq_stats.table_file = fn
    obsid = 20001
    obsid_info, acq, star_info, catalog, temp = acq_stats.calc_stats(obsid)
    t = acq_stats.table_acq_stats(obsid_info, acq, star_info, catalog, temp)
    acq_stats._save_acq_stats(t)
    os.unlink(fn)
