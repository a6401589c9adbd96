"""The provider contract of the statistics' inputs, for each implementation that runs here."""

from __future__ import annotations

import numpy as np
import pytest

from mica.stats.inputs import AGASC_DTYPE, CATALOG_DTYPE, InputError, provider_for
from mica.time import to_secs


def _sim():
    from mica.sim.pcad import SimProvider

    return SimProvider()


def _ska():
    from mica.stats.ska_inputs import SkaProvider, available

    ok, why = available()
    if not ok:
        pytest.skip(f"Ska provider contract: {why}")
    return SkaProvider()


@pytest.fixture(params=["simulated", "ska"])
def provider(request):
    return _sim() if request.param == "simulated" else _ska()


def _first(provider):
    t0 = float(to_secs("2012:001"))
    obsid, tstart = provider.obsids(t0, t0 + 86400)[0]
    return obsid, tstart


def test_obsids_and_maneuvers_are_in_time_order(provider):
    t0 = float(to_secs("2012:001"))
    obs = provider.obsids(t0, t0 + 86400)
    assert len(obs) >= 3 and [t for _, t in obs] == sorted(t for _, t in obs)
    mv = provider.maneuver(obs[1][0])
    assert mv.start < mv.acq_start < mv.guide_start < mv.kalman_start <= mv.dwell_start
    assert mv.dwell_start < mv.dwell_stop


def test_catalog_and_agasc(provider):
    obsid, _ = _first(provider)
    mv = provider.maneuver(obsid)
    cat = provider.catalog(obsid, mv.acq_start)
    assert cat.dtype == CATALOG_DTYPE and np.all(np.diff(cat["idx"]) > 0)
    acq = cat[np.isin(cat["type"], [b"ACQ", b"BOT"])]
    assert 1 <= len(acq) <= 8 and np.all((acq["halfw"] >= 60) & (acq["halfw"] <= 160))
    stars = provider.agasc([int(i) for i in acq["id"]], mv.acq_start)
    assert stars.dtype == AGASC_DTYPE and list(stars["AGASC_ID"]) == list(acq["id"])
    assert np.allclose(stars["MAG_ACA"], acq["mag"], atol=0.5)
    with pytest.raises(InputError, match="AGASC id 12"):
        provider.agasc([12], mv.acq_start)


def test_telemetry_names_cadence_and_state_codes(provider):
    obsid, _ = _first(provider)
    mv = provider.maneuver(obsid)
    names = ["AOACASEQ", "AOACFCT3", "AOACQID3", "AOACIIR3", "AOATTQT4", "AACCCDPT"]
    tlm = provider.telemetry(names, mv.acq_start - 30, mv.kalman_start + 30)
    seq = tlm["AOACASEQ"]
    assert set(np.char.strip(seq.vals.astype(str))) >= {"AQXN", "GUID", "KALM"}
    assert 0.9 < np.median(np.diff(seq.times)) < 1.1  # ~1.025 s
    assert set(np.char.strip(tlm["AOACFCT3"].vals.astype(str))) <= {"NONE", "SRCH", "RACQ", "TRAK"}
    assert set(tlm["AOACQID3"].vals.astype(str)) <= {"ID  ", "NOID"}  # fixed width
    assert set(tlm["AOACIIR3"].vals.astype(str)) <= {"OK ", "ERR"}
    q4 = tlm["AOATTQT4"].vals.astype(float)
    assert np.all(np.abs(q4) <= 1)
    ccd = tlm["AACCCDPT"]
    assert 30 < np.median(np.diff(ccd.times)) < 35 and np.all((ccd.vals > -25) & (ccd.vals < 0))


def test_simulated_telemetry_is_a_function_of_time_only():
    p = _sim()
    obsid, _ = _first(p)
    mv = p.maneuver(obsid)
    a = p.telemetry(["AOACYAN2", "AOATTQT1"], mv.acq_start - 20, mv.kalman_start)
    b = p.telemetry(["AOACYAN2", "AOATTQT1"], mv.acq_start + 10, mv.kalman_start + 50)
    common, ia, ib = np.intersect1d(a["AOATTQT1"].times, b["AOATTQT1"].times, return_indices=True)
    assert len(common) > 20
    assert np.array_equal(a["AOACYAN2"].vals[ia], b["AOACYAN2"].vals[ib])
    assert np.array_equal(a["AOATTQT1"].vals[ia], b["AOATTQT1"].vals[ib])


def test_simulated_attitude_is_the_aspect_l1_attitude_after_the_one_shot():
    from mica.sim.asp_l1 import aca_attitude

    p = _sim()
    obsid, _ = _first(p)
    mv = p.maneuver(obsid)
    names = [f"AOATTQT{k}" for k in range(1, 5)]
    tlm = p.telemetry(names, mv.kalman_start, mv.kalman_start + 60)
    q = np.stack([tlm[n].vals for n in names], axis=-1)
    obs = p.mission.observation(obsid)
    assert np.allclose(q, aca_attitude(obs, tlm["AOATTQT1"].times), atol=1e-12)
    pre = p.telemetry(names, mv.acq_start, mv.acq_start + 10)
    qp = np.stack([pre[n].vals for n in names], axis=-1)
    assert not np.allclose(qp, aca_attitude(obs, pre["AOATTQT1"].times), atol=1e-9)


def test_provider_for_picks_by_the_archive_kind(tmp_path):
    from mica.engine.provenance import write_provenance
    from mica.sim.pcad import SimProvider

    with pytest.raises(Exception, match="mica update obspar"):
        provider_for(tmp_path)
    (tmp_path / "obspar").mkdir()
    write_provenance(tmp_path / "obspar", {"kind": "simulated"})
    assert isinstance(provider_for(tmp_path), SimProvider)
    from mica.stats.ska_inputs import available

    if not available()[0]:
        with pytest.raises(InputError, match="not available here"):
            provider_for(tmp_path, kind="real")


def test_the_readers_and_algorithms_do_not_import_the_simulator():
    import subprocess
    import sys

    code = (
        "import sys, mica.stats.acq_stats, mica.stats.guide_stats, mica.stats.inputs, "
        "mica.stats._acq, mica.stats._guide, mica.stats.ska_inputs, mica.stats.acq_product, "
        "mica.stats.guide_product\n"
        "print(sorted(m for m in sys.modules if m.startswith('mica.sim')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
