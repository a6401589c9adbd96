"""Every registered product (built-in, plugin, the examples of ``docs/layout.rst``) passes the
same checks: its description loads, its layout is one of `LAYOUTS`, its name, folder, file
pattern and index columns agree, ``mica update <name> --help`` shows the options that apply,
``mica check`` lists it, and a tiny simulated archive of it updates and checks clean.

The tiny archives share one folder per module, filled through the registry: each product's
update asks its layout's `TINY` request of the first offline source that delivers it
(`OFFLINE_SOURCES`); a derived product's inputs are first filled the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mica.cli import main
from mica.engine.derived import DerivedProduct
from mica.engine.obsid_layout import ObsidProduct
from mica.engine.product import TIME_INDEX_COLUMNS, FileProduct
from mica.engine.registry import COMMON, LAYOUTS, ProductEntry, products
from mica.engine.report import CheckReport, UpdateReport
from tests.conformance.conftest import (
    ENTRIES,
    description,
    entry_of_folder,
    folder,
    offline_source,
)

#: the description each layout's entry points at
KIND = {"time": FileProduct, "obsid": ObsidProduct, "calib": FileProduct, "derived": DerivedProduct}
#: The tiny update of each layout, in the simulated mission: ten minutes of 2012:125, the
#: obsid of the documentation's archive (10369, on 2012:125), the calibration of 1999:223
#: (before 2000: no L0 for its temperatures).
TINY = {
    "time": {"start": "2012:125:00:00:00", "stop": "2012:125:00:10:00"},
    "obsid": {"obsids": [10369]},
    "calib": {"start": "1999:223", "stop": "1999:224"},
    "derived": {"obsids": [10369]},
}
#: the options every entry of a layout takes
LAYOUT_OPTIONS = {
    "time": set(),
    "obsid": {"obsids", "refresh"},
    "calib": set(),
    "derived": {"obsids", "check_missing"},
}
#: an update option -> the flag ``mica update <name> --help`` shows for it
FLAGS = {"obsids": "--obsid", "data_root": "--data-root"}
_TIME_COLUMNS = [c.name for c in TIME_INDEX_COLUMNS]


@pytest.fixture(params=ENTRIES, ids=[e.name for e in ENTRIES])
def entry(request) -> ProductEntry:
    return request.param


# --- the description ---------------------------------------------------------------------
def test_description_loads(entry: ProductEntry):
    target = entry.load()
    assert target is not None
    if entry.layout == "calib":  # the update module, with its update and check
        assert callable(target.update) and callable(target.check)
    assert isinstance(description(entry), KIND[entry.layout])


def test_layout_is_one_of_the_table(entry: ProductEntry):
    assert entry.layout in LAYOUTS
    assert entry in products(entry.layout)


def test_names_agree(entry: ProductEntry):
    assert description(entry).name == entry.name
    module, _, attribute = entry.target.partition(":")
    assert module and (attribute or entry.layout == "calib")


def test_options_fit_the_layout(entry: ProductEntry):
    options = set(entry.options)
    assert set(COMMON) - {"source"} <= options
    assert ("source" in options) == (entry.layout != "derived")  # inputs are archives
    assert LAYOUT_OPTIONS[entry.layout] <= options
    for option in ("refresh", "check_missing"):  # one layout's each
        assert (option in options) == (option in LAYOUT_OPTIONS[entry.layout]), option


def test_folder_is_one_name_its_own_and_in_the_help(entry: ProductEntry):
    name = folder(entry)
    assert name and "/" not in name and not name.startswith(".")
    assert [e.name for e in ENTRIES if folder(e) == name] == [entry.name]
    assert f"<archive>/{name}" in entry.help


def test_file_pattern_and_index_columns(entry: ProductEntry):
    product = description(entry)
    if not isinstance(product, FileProduct):
        pytest.skip("a derived product keeps a table, not files")
    assert isinstance(product.filename_re, re.Pattern)
    assert product.filename_re.pattern.endswith(r"\.gz")  # the archive keeps files gzipped
    assert product.max_file_span > 0 and product.source_lookback >= 0
    if entry.layout == "calib":
        return  # calibration folders: no index
    names = [c.name for c in product.index_columns]
    assert names[0] == "filename" and len(set(names)) == len(names)
    assert set(_TIME_COLUMNS) <= set(names)  # the engine's queries
    assert {"revision", "checksum"} <= set(names)  # ingest's revision rules compare them
    assert set(product.stream_columns) <= set(names)
    for sql in product.index_sql:
        for columns in re.findall(r"ON archfiles \(([^)]*)\)", sql):
            assert {c.strip() for c in columns.split(",")} <= set(names), sql
    if entry.layout == "time":
        assert names[: len(_TIME_COLUMNS)] == _TIME_COLUMNS
    else:
        assert {"obsid", "revision"} <= set(names)


def test_derived_table_and_inputs(entry: ProductEntry):
    product = description(entry)
    if not isinstance(product, DerivedProduct):
        pytest.skip("a file product")
    columns = set(product.spec.dtype.names)
    spec = product.spec
    for group in (spec.key, spec.indexes, spec.csi, spec.preserve, spec.match):
        assert set(group) <= columns
    assert spec.key and product.table_name.endswith(".h5") and product.inputs
    for name in product.inputs:  # each input is a registered file product's folder
        entry_of_folder(name)


# --- the command line ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def update_help() -> dict[str, tuple[int, str]]:
    """``mica update <name> --help`` of every entry. `mica.cli` was imported (at the top of
    this module) before the examples registered: their commands come from the registry when
    the command line runs."""
    helps = {}
    for entry in ENTRIES:
        result = CliRunner().invoke(main, ["update", entry.name, "--help"])
        helps[entry.name] = (result.exit_code, result.output)
    return helps


def test_update_help_shows_the_options_that_apply(entry: ProductEntry, update_help):
    status, output = update_help[entry.name]
    assert status == 0, output
    assert entry.help.split()[0] in output
    for option in ("start", "stop", "source", "obsids", "data_root", "wait", "quiet",
                   "refresh", "with_inputs", "check_missing", "days_at_once", "l0_root",
                   "scheduler", "workers"):  # fmt: skip
        flag = FLAGS.get(option, "--" + option.replace("_", "-"))
        assert (flag in output) == (option in entry.options), flag


@pytest.fixture(scope="module")
def empty_check(tmp_path_factory) -> str:
    """``mica check`` of an empty archive (every registered product, the examples too)."""
    archive = tmp_path_factory.mktemp("empty-archive")
    (archive / "aca0").mkdir()  # an archive with one product folder, still empty
    result = CliRunner().invoke(main, ["--archive", str(archive), "check"])
    assert result.exit_code == 0, result.output
    return result.output


def test_mica_check_lists_it_without_problems(entry: ProductEntry, empty_check: str):
    lines = [line for line in empty_check.splitlines() if line.startswith(f"{entry.name}: ")]
    assert len(lines) == 1 and not re.search(r"\b[1-9]\d* problem", lines[0]), empty_check


# --- a tiny simulated archive --------------------------------------------------------------
class TinyArchive:
    """One archive folder; each product updated in it once (its inputs first)."""

    def __init__(self, root: Path):
        self.root = root
        self.reports: dict[str, UpdateReport] = {}

    def data_root(self, entry: ProductEntry) -> Path:
        return self.root / folder(entry)

    def update(self, entry: ProductEntry) -> UpdateReport:
        if entry.name not in self.reports:
            options = {**TINY[entry.layout], "data_root": self.data_root(entry), "quiet": True}
            product = description(entry)
            if isinstance(product, DerivedProduct):
                for name in product.inputs:
                    self.update(entry_of_folder(name))
            else:
                options["source"] = offline_source(product)
            self.reports[entry.name] = entry.update(**options)
        return self.reports[entry.name]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> TinyArchive:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MICA_SIM_L1_DECIMATE", "20")  # aspect L1: every 20th sample, quickly
        yield TinyArchive(tmp_path_factory.mktemp("tiny-archive"))


def test_tiny_archive_updates_and_checks_clean(entry: ProductEntry, tiny: TinyArchive):
    report = tiny.update(entry)
    assert isinstance(report, UpdateReport)
    assert report.ok and report.done, report.summary()
    check = entry.check(data_root=tiny.data_root(entry))
    assert isinstance(check, CheckReport)
    assert check.ok and not check.problems, check.summary()
    assert check.summary().startswith(entry.name)


def test_tiny_archive_updates_again_with_nothing_new(entry: ProductEntry, tiny: TinyArchive):
    tiny.update(entry)
    options = {**TINY[entry.layout], "data_root": tiny.data_root(entry), "quiet": True}
    report = entry.update(**options)  # the recorded source (archive.json), no --source
    assert report.ok and not report.ingested, report.summary()
    assert entry.check(data_root=tiny.data_root(entry)).ok


def test_time_update_resumes_where_it_left_off(entry: ProductEntry, tiny: TinyArchive):
    """Without a start, an update of a time-ordered product continues from its archive
    (also one without stream columns, such as the example's)."""
    if entry.layout != "time":
        pytest.skip("only time-ordered products resume by time")
    tiny.update(entry)
    report = entry.update(stop="2012:125:00:20:00", data_root=tiny.data_root(entry), quiet=True)
    # the chunk from the newest archived data on: files already held count as unchanged
    assert report.ok and (report.done or report.unchanged), report.summary()


@pytest.fixture(scope="module")
def indexed_product_helps() -> tuple[str, str]:
    """``mica rebuild index --help`` and ``mica adopt --help``: their product choices come
    from the registry when the command line runs, as ``mica update``'s commands do."""
    outputs = []
    for args in (["rebuild", "index", "--help"], ["adopt", "--help"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output.split("\n\n")[0])  # the usage line(s)
    return outputs[0], outputs[1]


def test_rebuild_index_and_adopt_offer_it_when_indexed(entry: ProductEntry, indexed_product_helps):
    for usage in indexed_product_helps:
        assert (entry.name in usage) == (entry.layout in ("time", "obsid")), usage
