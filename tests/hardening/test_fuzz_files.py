"""Hypothesis fuzz suite: hostile variants of real and simulated files through the real update.

Variants of the real 2003 L0 files, simulated L0 files, simulated obspars and simulated aspect
L1 files (header cards, column formats, values, obspar parameters, byte flips, truncations,
gzip damage; the generator is benchmarks/hostile_gen.py, shared with the hardening benchmark)
are offered through a ``dir:`` source to an archive of the matching kind built from other
files. Each case must be refused with the file named and kept in ``rejected/`` with its reason,
or accepted and read back equal to astropy's read; a refusal leaves the archive's data as it
was, nothing stays in staging, and `check_archive` is clean. Derandomized and bounded.
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import sys

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mica.products.aca_l0 import L0
from mica.sim.aca_l0 import plan_l0_files, write_l0_file
from tests.conftest import REPO_ROOT

_GEN = REPO_ROOT / "benchmarks" / "hostile_gen.py"
_spec = importlib.util.spec_from_file_location("hostile_gen", _GEN)
gen = importlib.util.module_from_spec(_spec)
sys.modules["hostile_gen"] = gen
_spec.loader.exec_module(gen)

SIM_WINDOW = ("2012:001:00:00:00", "2012:001:01:00:00")
#: derandomized (the same cases every run), no example database, bounded per mutation kind:
#: every kind runs on each family (a family's draws among the kinds used to leave some kinds
#: run 5 times and others once), each twice (other targets and parameters)
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=2,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its draws
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_counter = itertools.count()


def _assert_outcome(outcome: str, name: str) -> None:
    assert outcome.split(" ", 1)[0] in gen.CLEAN, f"{name}: {outcome}"


@pytest.fixture(scope="module")
def l0_pools(tmp_path_factory, real_l0_dir) -> dict[str, tuple]:
    """Per L0 family: (base archive of every file but the targets, targets, time span)."""
    where = tmp_path_factory.mktemp("fuzz-l0")
    sim = where / "sim-files"
    sim.mkdir()
    for plan in plan_l0_files(*SIM_WINDOW):
        write_l0_file(plan, sim)
    pools = {}
    for kind, files in (
        ("real", sorted(real_l0_dir.glob("*.fits.gz"))),
        ("sim", sorted(sim.glob("*.fits*"))),
    ):
        targets = files[1::3]
        base = gen.build_l0_base([f for f in files if f not in targets], where / f"base-{kind}")
        times = [L0.name_time(p.name) for p in files]
        pools[kind] = (base, targets, (min(times), max(times)))
    return pools


@pytest.fixture(scope="module")
def obsid_pools(tmp_path_factory) -> dict[str, tuple]:
    """Per obsid family: (base archive of another obsid, mirror of the variants' obsid, files)."""
    where = tmp_path_factory.mktemp("fuzz-obsid")
    return {f: gen.build_obsid_base(f, where / f) for f in ("obspar", "asp")}


@pytest.mark.parametrize("kind", gen.FITS_MUTATIONS)
@pytest.mark.parametrize("family", ["real", "sim"])
@FUZZ
@given(data=st.data())
def test_fuzzed_l0_refused_or_read_back_equal(family, kind, data, l0_pools, tmp_path):
    base, targets, span = l0_pools[family]
    target = data.draw(st.sampled_from(targets), label="target")
    variant = gen.mutate(target, kind, gen.Draws(data))
    name = L0.archive_name(target.name)
    work = tmp_path / f"case-{next(_counter)}"
    try:
        outcome = gen.run_l0_batch(base, {name: variant}, work, span)[name]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _assert_outcome(outcome, f"{kind} of {name}")


@pytest.mark.parametrize(
    ("family", "kind"),
    [("obspar", kind) for kind in gen.TEXT_MUTATIONS]
    + [("asp", kind) for kind in gen.FITS_MUTATIONS],
)
@FUZZ
@given(data=st.data())
def test_fuzzed_obspar_and_asp_l1_refused_or_read_back_equal(
    family, kind, data, obsid_pools, tmp_path
):
    base, mirror, files = obsid_pools[family]
    target = data.draw(st.sampled_from(files), label="target")
    if family == "obspar":
        variant = gen.mutate_text(target, kind, gen.Draws(data))
    else:
        variant = gen.mutate(target, kind, gen.Draws(data))
    work = tmp_path / f"case-{next(_counter)}"
    try:
        outcome = gen.run_obsid_case(family, base, mirror, target, variant, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _assert_outcome(outcome, f"{kind} of {target.name}")
