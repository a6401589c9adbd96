# Licensed under a 3-clause BSD style license - see LICENSE.rst
# From sot/mica mica/archive/tests/test_obspar.py (tests/original/README.md).
# ruff: noqa  (the original's code as it was written; only the substitutions differ)
import pytest

from mica.archive import obspar  # substitution: the package's tests were relative imports


@pytest.mark.skip(reason="kadi's flight obsid list of 2016:001-005 (no kadi, simulated archive)")
def test_get_obsids():
    """
    Test that archive.obspar.get_obsids gets a reasonable set of obsids.
    """
    start = "2016:001"
    stop = "2016:005"
    mica_obs = obspar.get_obsids(start, stop)
    # from kadi.events.obsids.filter(start, stop)
    kadi_obsid_list = [51365, 18736, 18036, 18203, 18119,
                       18737, 51364, 51363, 51362, 51361,
                       18216, 16821, 17023, 18293, 18623,
                       18248]
    assert len(kadi_obsid_list) == len(mica_obs)
    for o1, o2 in zip(kadi_obsid_list, mica_obs):
        assert o1 == o2
