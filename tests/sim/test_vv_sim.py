"""The simulator's seeded faults: documented kinds with rates, and the ground truth."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from astropy.io import fits

from mica.sim import asp_l1 as sim
from mica.sim.mission import default_mission


def test_fault_kinds_rates_and_scale(monkeypatch):
    assert sim.PROBLEM_KINDS == tuple(sim.FAULT_KINDS)
    assert abs(sim.PROBLEM_RATE - 0.01) < 1e-12
    kinds = Counter(sim.problem_obsids("2005:001", "2013:001").values())
    assert set(kinds) == set(sim.FAULT_KINDS)
    n = sum(
        1 for o in default_mission().observations("2005:001", "2013:001") if o.kind == "science"
    )
    assert 0.005 * n < sum(kinds.values()) < 0.02 * n
    monkeypatch.setenv("MICA_SIM_FAULT_SCALE", "30")
    scaled = sim.problem_obsids("2005:001", "2013:001")
    assert len(scaled) > 15 * sum(kinds.values())
    monkeypatch.setenv("MICA_SIM_FAULT_SCALE", "1000")
    assert sim.fault_scale() == 1 / sim.PROBLEM_RATE  # capped: every obsid faulty at most


def test_ground_truth_file_and_the_seeded_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MICA_SIM_L1_DECIMATE", "80")
    first = {}
    for obs in default_mission().observations("2005:001", "2013:001"):
        kind = sim.seeded_problem(obs.obsid)
        if kind and kind not in first:
            first[kind] = obs.obsid
    path = sim.write_ground_truth(tmp_path / "truth.json", [6000, *first.values()])
    truth = json.loads(path.read_text())
    assert truth["obsids"]["6000"] == {"obsid": 6000, "fault": None, "slot": None, "interval": None}
    # wrong catalog: the GSPROPS positions are 2-3" off the catalogue the images follow
    obsid = first["wrong_catalog"]
    rev = sim.available(obsid)[0].revision
    (tmp_path / "wc").mkdir()
    files = sim.write_asp_l1(obsid, rev, tmp_path / "wc")
    gspr = fits.getdata(next(f for f in files if "gspr1" in f.name))
    stars = {s["slot"]: s["eci"] for s in sim.star_catalog(default_mission().observation(obsid))}
    off = [np.degrees(np.arccos(np.clip(np.dot(p, stars[s]), -1, 1))) * 3600
           for s, p in zip(gspr["slot"], gspr["pos_eci"], strict=True)]  # fmt: skip
    assert all(1.9 < o < 3.1 for o in off)
    # missing slot: no ACACENT rows of that slot in the last interval only
    obsid = first["missing_slot"]
    info = truth["obsids"][str(obsid)]
    (tmp_path / "ms").mkdir()
    files = sim.write_asp_l1(obsid, sim.available(obsid)[0].revision, tmp_path / "ms")
    acens = sorted(f for f in files if "acen1" in f.name)
    assert len(acens) == info["interval"] + 1
    slots = [set(fits.getdata(f)["slot"].tolist()) for f in acens]
    assert info["slot"] not in slots[-1] and all(info["slot"] in s for s in slots[:-1])


def test_alg1_smoothing_any_length():
    """The alg 1 smoothed centroids: a centred running mean of 5, shorter at the ends and
    for tracks shorter than the window (decimated products)."""
    assert sim._smooth(np.array([])).shape == (0,)
    assert sim._smooth(np.array([2.0])).tolist() == [2.0]
    assert sim._smooth(np.array([1.0, 3.0])).tolist() == [2.0, 2.0]
    x = np.arange(8, dtype=float)
    assert np.allclose(sim._smooth(x), [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 5.5, 6.0])
