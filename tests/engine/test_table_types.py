"""The statistics and V&V tables read as the original's did, with plain PyTables and h5py.

Booleans are stored as PyTables stores a ``BoolCol`` (8-bit bitfields): ``read_where`` gives
bool, so the original's ``stats[~stats['known_bad']]`` drops the known-bad rows. A table written
by the earlier h5py booleans (int8 enums: PyTables read int8, and ``~`` of int8 0 is -1, an
index) is a problem for ``mica check``, mended by ``--repair`` or the next update.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables
from click.testing import CliRunner

from mica.cli import main
from mica.engine.derived import check_derived, update_derived
from mica.engine.digests import digest_file, recorded
from mica.engine.obsid_update import update_obsid_archive
from mica.engine.table_store import GenerationTable
from mica.products.asp_l1 import ASP_L1
from mica.products.obspar import OBSPAR
from mica.stats.acq_product import ACQ_STATS
from mica.stats.guide_product import GUIDE_STATS
from mica.vv.product import VV

# the guide table's column f_within_0.3 is not a Python identifier: PyTables says so
pytestmark = pytest.mark.filterwarnings("ignore:object name is not a valid Python identifier")

STATS_OBSID, VV_OBSID = 5438, 2121
# product, table file under the archive, node, the obsid it holds
TABLES = [
    (ACQ_STATS, "acq_stats/acq_stats.h5", "data", STATS_OBSID),
    (GUIDE_STATS, "guide_stats/guide_stats.h5", "data", STATS_OBSID),
    (VV, "vv/vv.h5", "vv", VV_OBSID),
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Obspars of 5438 and 2121, the aspect L1 of 2121; the three tables by ``update`` (V&V
    without its slot plots: the tables are the subject)."""
    root = tmp_path_factory.mktemp("table-types")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", "40")
        obspar = [STATS_OBSID, VV_OBSID]
        assert update_obsid_archive(OBSPAR, "sim", obspar, data_root=root / "obspar").ok
        assert update_obsid_archive(ASP_L1, "sim", [VV_OBSID], data_root=root / "asp1").ok
    for product in (ACQ_STATS, GUIDE_STATS):
        update_derived(product, archive=root, data_root=root / product.folder, obsids=[STATS_OBSID])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VV, "plots", False)
        update_derived(VV, archive=root, data_root=root / "vv", obsids=[VV_OBSID])
    for _, path, _, _ in TABLES:
        assert (root / path).exists(), path
    return root


def same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype names, length and values, column by column (NaN equal to NaN)."""
    return a.dtype.names == b.dtype.names and all(
        np.array_equal(a[n], b[n], equal_nan=a.dtype[n].kind == "f") for n in a.dtype.names
    )


def bool_columns(dtype: np.dtype) -> list[str]:
    return [name for name in dtype.names if dtype[name] == np.bool_]


def stored_member_types(path: Path, node: str) -> dict[str, h5py.h5t.TypeID]:
    with h5py.File(path, "r") as h5:
        stored = h5[node].id.get_type()
        return {
            stored.get_member_name(i).decode(): stored.get_member_type(i)
            for i in range(stored.get_nmembers())
        }


def pytables_bool_type(tmp_path: Path) -> h5py.h5t.TypeID:
    """The HDF5 type PyTables itself writes for a BoolCol."""

    class Row(tables.IsDescription):
        flag = tables.BoolCol()

    path = tmp_path / "boolcol.h5"
    with tables.open_file(path, "w") as h5:
        h5.create_table("/", "data", Row).append([(True,), (False,)])
    return stored_member_types(path, "data")["flag"]


@pytest.mark.parametrize("product, path, node, obsid", TABLES, ids=["acq", "guide", "vv"])
def test_the_originals_read_idioms(archive, tmp_path, product, path, node, obsid):
    path = archive / path
    spec = product.table(path.parent).spec
    with tables.open_file(path) as h5:
        table = h5.get_node("/", node)
        everything = table.read()
        stats = table.read_where(f"obsid == {obsid}")
    assert len(stats) > 0 and same_rows(stats, everything[everything["obsid"] == obsid])
    for name in bool_columns(spec.dtype):
        assert stats.dtype[name] == np.bool_, name
    assert stats.dtype == spec.dtype
    if "known_bad" in spec.dtype.names:
        assert same_rows(stats[~stats["known_bad"]], stats)  # nothing marked yet
    # h5py: the same rows; booleans as uint8 0/1 (as the original's tables), bool by astype
    with h5py.File(path, "r") as h5:
        plain = h5[node][...]
        typed = h5[node].astype(spec.dtype)[...]
    assert typed.dtype == spec.dtype and same_rows(typed, everything)
    assert same_rows(plain, everything)
    # the stored type of each bool column is PyTables' own BoolCol type
    boolcol = pytables_bool_type(tmp_path)
    members = stored_member_types(path, node)
    for name in bool_columns(spec.dtype):
        assert members[name].get_class() == h5py.h5t.BITFIELD and members[name].equal(boolcol)


def test_known_bad_rows_are_dropped_by_the_original_idiom(archive, tmp_path):
    """A row marked known_bad (with PyTables, as the original's users did) is what
    ``stats[~stats['known_bad']]`` drops, and what the next update keeps marked."""
    root = tmp_path / "archive"
    shutil.copytree(archive, root, symlinks=True)
    path = root / "acq_stats" / "acq_stats.h5"
    with tables.open_file(path, "a") as h5:
        data = h5.root.data
        i = int(data.get_where_list(f"obsid == {STATS_OBSID}")[1])
        data.modify_column(i, i + 1, column=[True], colname="known_bad")
    for _ in range(2):  # as written by hand, then as rewritten by an update
        with tables.open_file(path) as h5:
            stats = h5.root.data.read_where(f"obsid == {STATS_OBSID}")
        good = stats[~stats["known_bad"]]
        assert len(good) == len(stats) - 1 and not good["known_bad"].any()
        assert stats["slot"][1] not in good["slot"].tolist()
        update_derived(ACQ_STATS, archive=root, data_root=root / "acq_stats", obsids=[STATS_OBSID])


def write_earlier_format(table: GenerationTable) -> None:
    """The table as this mica wrote it before: h5py's booleans (int8 enums)."""
    rows, failures = table.read(), table.failures()
    with h5py.File(table.path, "w") as h5:
        for name, data in ((table.spec.node, rows), ("failures", failures)):
            h5.create_dataset(name, data=data, maxshape=(None,), chunks=(1024,))
    with tables.open_file(table.path, "a") as h5:
        for col in table.spec.indexes:
            h5.get_node("/", table.spec.node).colinstances[col].create_index()


@pytest.mark.parametrize("product, name", [(ACQ_STATS, "acq_stats"), (GUIDE_STATS, "guide_stats")])
def test_earlier_format_is_a_problem_mended_by_check_repair(archive, tmp_path, product, name):
    root = tmp_path / "archive"
    shutil.copytree(archive, root, symlinks=True)
    table = product.table(root / name)
    before, failures = table.read(), table.failures()
    write_earlier_format(table)
    assert table.old_bool_columns() == bool_columns(table.spec.dtype)
    with tables.open_file(table.path) as h5:
        stats = h5.root.data.read_where(f"obsid == {STATS_OBSID}")
    assert stats.dtype["known_bad"] == np.int8  # the earlier format's trouble:
    wrong = stats[~stats["known_bad"]]  # ~0 == -1: the last row, again and again
    assert len(wrong) == len(stats) and (wrong["slot"] == stats["slot"][-1]).all()
    report = check_derived(product, root / name)
    assert not report.ok and any("known_bad" in p and "--repair" in p for p in report.problems)
    result = CliRunner().invoke(main, ["check", "--repair"], env={"MICA_ARCHIVE": str(root)})
    assert "rewrote" in result.output, result.output
    assert check_derived(product, root / name).ok and table.old_bool_columns() == []
    assert same_rows(table.read(), before) and same_rows(table.failures(), failures)
    with tables.open_file(table.path) as h5:
        stats = h5.root.data.read_where(f"obsid == {STATS_OBSID}")
        assert h5.root.data.cols.obsid.is_indexed
    assert stats.dtype["known_bad"] == np.bool_ and same_rows(stats[~stats["known_bad"]], stats)


def test_earlier_format_is_rewritten_by_the_next_update(archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(archive, root, symlinks=True)
    table = GUIDE_STATS.table(root / "guide_stats")
    write_earlier_format(table)
    update_derived(GUIDE_STATS, archive=root, data_root=root / "guide_stats", obsids=[STATS_OBSID])
    assert table.old_bool_columns() == [] and check_derived(GUIDE_STATS, root / "guide_stats").ok


@pytest.mark.parametrize("product, path, node, obsid", TABLES, ids=["acq", "guide", "vv"])
def test_damaged_table_is_found_by_check_and_rebuilt_by_repair(
    archive, tmp_path, monkeypatch, product, path, node, obsid
):
    """Each table's digests are recorded when it is written; a byte flipped in its stored
    rows is named by ``mica check`` and the table rebuilt from the inputs by ``--repair``."""
    monkeypatch.setattr(VV, "plots", False)  # as the module's archive was built
    root = tmp_path / "archive"
    shutil.copytree(archive, root, symlinks=True)
    table = product.table(root / product.folder)
    before = table.read()
    assert recorded(table.path).files == (digest_file(table.path),)
    with h5py.File(table.path, "r") as h5:
        info = h5[node].id.get_chunk_info(0)
    with open(table.path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, 1)
        fh.write(bytes([byte ^ 0x5A]))
    env = {"MICA_ARCHIVE": str(root), "MICA_SIM_L1_DECIMATE": "40"}
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == 1 and f"problem: {table.path} does not " in result.output
    result = CliRunner().invoke(main, ["check", "--repair"], env=env)
    assert result.exit_code == 0, result.output
    assert f"repaired: rebuilt {table.path.name} from the inputs" in result.output
    assert check_derived(product, root / product.folder).ok
    rows = table.read()
    assert same_rows(rows[rows["obsid"] == obsid], before[before["obsid"] == obsid])
