"""Deterministic simulated Chandra: mission schedule and ACA products in the real formats.

The real upstream archive is unreachable, so mica's archive code is exercised against these
simulated products. Everything is a pure function of a seed (default 1999).
"""

from mica.sim.aca_l0 import L0FilePlan, plan_l0_files, write_l0_file
from mica.sim.mission import Mission, Observation, SlotAssignment, default_mission, get_mission

__all__ = [
    "L0FilePlan",
    "Mission",
    "Observation",
    "SlotAssignment",
    "default_mission",
    "get_mission",
    "plan_l0_files",
    "write_l0_file",
]
