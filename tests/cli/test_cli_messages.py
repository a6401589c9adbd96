"""What a person sees on the command line is right: an interrupted update says what it did
and what it left, summaries agree with the lines under them, progress counts the work's
unit, every ``mica check`` problem comes with what mends it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mica.cli import main
from mica.engine.report import CheckReport, UpdateReport
from mica.progress import UpdateProgress
from tests.conftest import REPO_ROOT, WITH_WORKERS, popen_interruptible


def _mica(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mica.cli", *args], capture_output=True, text=True, timeout=600
    )


def _indexed(root: Path) -> int:
    """Files in the L0 index (0 before it exists); read-only, beside a running update."""
    db = root / "aca0" / "archfiles.db3"
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM archfiles").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def archive_copy(docs_archive: Path, tmp_path: Path) -> Path:
    """A copy of the documentation's archive a test may update (obsid links kept)."""
    root = tmp_path / "archive"
    shutil.copytree(docs_archive, root, symlinks=True)
    return root


# --- 1. an interrupted update; `mica check` names what mends each problem ------------------


def test_interrupted_update_says_what_it_finished_and_left(tmp_path):
    root = tmp_path / "archive"
    args = ["--archive", str(root), "update", "aca-l0", "--source", "sim", "--quiet"]
    args += ["--start", "2012:210", "--stop", "2012:211"]
    proc = popen_interruptible(
        [sys.executable, "-m", "mica.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | WITH_WORKERS,  # interrupted with its workers busy, as a user's is
    )
    try:
        while proc.poll() is None and _indexed(root) < 30:
            time.sleep(0.1)
        assert proc.poll() is None, "the update ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Aborted!" not in out + err and "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[0].startswith(
        "aca-l0: interrupted in 2012:210:00:00:00 .. 2012:211:00:00:00 (time chunk 1 of 1), "
    ), out
    assert "files processed" in lines[0]
    assert lines[1].startswith("  finished before it: 0 time chunks fetched")
    assert lines[2] == "  left: the rest of 2012:210:00:00:00 .. 2012:211:00:00:00"
    assert "run the same update again to complete it" in lines[3]
    assert "`mica check --repair`" in lines[3]

    # what it left half-done: each problem with the command that mends it
    check = CliRunner().invoke(main, ["--archive", str(root), "check"])
    assert check.exit_code == 1, check.output
    l0 = check.output.split("\nasp-l1:")[0]
    assert "problem: store chunk" in l0
    assert l0.splitlines()[-1] == f"  to mend: run `mica --archive {root} check --repair`"
    repair = CliRunner().invoke(main, ["--archive", str(root), "check", "--repair"])
    assert repair.exit_code == 0, repair.output
    assert "to mend" not in repair.output
    again = CliRunner().invoke(main, ["--archive", str(root), "check"])
    assert again.exit_code == 0 and "problem:" not in again.output, again.output


def test_check_summary_names_the_mending_command():
    report = CheckReport("aca-l0", files=3, problems=["store chunk 0/5 does not match"])
    assert report.summary().splitlines()[-1] == "  to mend: run `mica check --repair`"
    assert "to mend" not in report.summary(None)  # after a repair
    report.remedy = "move t.h5 away; `mica update vv` then writes a new one from the inputs"
    assert report.summary().splitlines()[-1] == f"  to mend: {report.remedy}"
    assert "to mend" not in CheckReport("aca-l0", files=3).summary()


def test_derived_interrupted_keeps_only_what_the_table_keeps():
    from mica.engine.derived import DerivedJob

    job = DerivedJob.__new__(DerivedJob)  # only the interrupt bookkeeping is exercised
    job.unit, job.rows, job.failures = "observation", {(1, 0): [], (2, 0): []}, {}
    report = UpdateReport("t", "observation", "computed", files_based=False)
    report.done = {(0, 0): "3 rows", (1, 0): "2 rows", (2, 0): "1 rows"}
    left = DerivedJob.interrupted(job, report)
    assert list(report.done) == [(0, 0)]  # written in a generation before the interrupt
    assert left == ["2 observations computed but not yet written to the table"]


# --- 2. summaries agree with the lines under them; progress in the unit of the work --------


def test_rerun_summary_counts_what_its_lines_say(archive_copy):
    args = ["--archive", str(archive_copy), "update", "obspar", "--quiet"]
    args += ["--start", "2012:125", "--stop", "2012:127"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    head, *lines = result.output.splitlines()
    assert head.startswith("obspar: 0 obsids updated, 9 already archived, 0 failed;")
    assert len(lines) == 1 and lines[0].startswith("  already archived (obsids): 9745, ")
    assert len(lines[0].split(":")[1].split(",")) == 9


def test_summary_of_one_unit_and_of_a_derived_table():
    report = UpdateReport("aca-l0", "time chunk", "fetched")
    report.done["2012:210 .. 2012:211"] = "3 ingested"
    assert report.summary().startswith("aca-l0: 1 time chunk fetched, 0 already archived,")
    derived = UpdateReport("acq-stats", "observation", "computed", files_based=False)
    # a derived update plans only what its table lacks: no "already archived" count
    assert derived.summary() == "acq-stats: 0 observations computed, 0 failed"


def test_progress_counts_the_unit_of_the_work():
    import io

    out = io.StringIO()
    progress = UpdateProgress("update guide-stats", stream=out, terminal=False)
    progress.units_named("observation")
    progress(0, 2, "obsid 9745")
    progress(1, 2, "obsid 10369")
    progress(2, 2, "done")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("update guide-stats: obsid 9745 done; 1/2 observations done, ")
    assert "observation" in lines[0].split(", ")[1]  # "x observations/s" or "x s/observation"
    assert "files" not in out.getvalue()
    files = UpdateProgress("update aca-l0", stream=out, terminal=False)
    files.units_named("time chunk")
    files(0, 1, "2012:125")
    files.files(2, 3, "f.fits")
    assert files.status().startswith("0/1 time chunks done, 2/3 files, ")
    assert "files/s" in files.status()


def test_update_progress_lines_of_a_derived_update(archive_copy):
    env = dict(os.environ, MICA_ARCHIVE=str(archive_copy))
    proc = subprocess.run(
        [sys.executable, "-m", "mica.cli", "update", "acq-stats", "--obsid", "9745"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1/1 observations done" in proc.stderr and "files" not in proc.stderr
    assert proc.stdout.startswith("acq-stats: 1 observation computed, 0 failed")


# --- 3. empty answers say so; 4. a user's mistake is one line, never a traceback -----------


def _fetch(archive: Path, *args: str) -> subprocess.CompletedProcess:
    return _mica("--archive", str(archive), "fetch", *args)


def test_empty_answers_say_so(docs_archive, tmp_path):
    png, csv = tmp_path / "e.png", tmp_path / "e.csv"
    empty = ["--start", "2015:001", "--stop", "2015:002"]
    run = _fetch(docs_archive, "hdr3", "ccd_temp", *empty, "--plot", str(png), "--csv", str(csv))
    assert run.returncode == 0, run.stderr  # an empty answer, not an error
    assert run.stderr == (
        "no data: the archive holds no header-3 ccd_temp between 2015:001:00:00:00.000 and "
        "2015:002:00:00:00.000\n"
    )
    assert "valid of" not in run.stdout  # no per-item line of nothing
    assert csv.read_text() == "time,date,ccd_temp\n"
    from PIL import Image

    with Image.open(png):  # a plot of the asked range marked "no data" (checked by hand)
        pass
    run = _fetch(docs_archive, "aca-l0", *empty, "--slot", "0")
    assert run.returncode == 0 and run.stdout == "", run.stdout
    assert run.stderr.startswith("no data: the archive holds no L0 of slot 0 between 2015:001")
    assert len(run.stderr.splitlines()) == 1


def test_empty_hdr3_plot_spans_the_asked_range(docs_archive, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from mica.plot import cxctime2plotdate
    from mica.time import to_secs

    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    args = ["--archive", str(docs_archive), "fetch", "hdr3", "ccd_temp", "dac"]
    args += ["--start", "2015:001", "--stop", "2015:002", "--plot", str(tmp_path / "e.png")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (fig,) = kept
    for ax in fig.axes:
        expected = cxctime2plotdate([to_secs("2015:001"), to_secs("2015:002")])
        assert ax.get_xlim() == pytest.approx(tuple(expected))
        assert [t.get_text() for t in ax.texts] == ["no data"]


L0_ONE_MINUTE = ["--start", "2012:125:00:00:00", "--stop", "2012:125:00:01:00", "--slot", "0"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["aca-l0", *L0_ONE_MINUTE, "--columns", "TIME,IMGRAW", "--csv", "{tmp}/x.csv"],
            "Error: cannot write {tmp}/x.csv: IMGRAW holds 64 values per row, which a CSV "
            "column cannot; leave it out of --columns",
        ),
        (
            ["aca-l0", *L0_ONE_MINUTE, "--csv", "{tmp}/nodir/x.csv"],
            "Error: cannot write {tmp}/nodir/x.csv: there is no folder {tmp}/nodir",
        ),
        (
            ["aca-l0", *L0_ONE_MINUTE, "--csv", "{tmp}"],
            "Error: cannot write {tmp}: it is a folder",
        ),
        (
            ["aca-l0", *L0_ONE_MINUTE, "--columns", ","],
            "Error: --columns names no column",
        ),
        (
            ["hdr3", "ccd_temp", "--start", "2012:125", "--stop", "2012:126", "--plot",
             "{tmp}/nodir/x.png"],
            "Error: cannot write {tmp}/nodir/x.png: there is no folder {tmp}/nodir",
        ),
        (
            ["hdr3", "ccd_temp", "--start", "2012:125", "--stop", "2012:126", "--plot",
             "{tmp}/x.xyz"],
            "Error: cannot write a plot to {tmp}/x.xyz: name it .png (or ",
        ),
        (
            ["hdr3", "ccd_temp", "--start", "2012:125", "--stop", "2012:126", "--csv",
             "{tmp}/nodir/x.csv"],
            "Error: cannot write {tmp}/nodir/x.csv: there is no folder {tmp}/nodir",
        ),
        (
            ["hdr3", "ccd_temp", "--start", "2012:126", "--stop", "2012:125"],
            "Error: stop 2012:125:00:00:00.000 is not after start 2012:126:00:00:00.000",
        ),
    ],
    ids=["2-d column", "csv folder", "csv is a folder", "no column", "plot folder",
         "plot format", "hdr3 csv folder", "stop before start"],
)  # fmt: skip
def test_a_users_mistake_is_one_line(docs_archive, tmp_path, args, message):
    run = _fetch(docs_archive, *[a.format(tmp=tmp_path) for a in args])
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(message.format(tmp=tmp_path)), run.stderr
    assert len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr
    assert not list(tmp_path.rglob("x.*"))  # nothing written


def test_missing_archive_and_mica_errors_are_one_line_in_cli_terms(tmp_path):
    run = _mica("--archive", str(tmp_path), "rebuild", "store")
    assert run.returncode == 1 and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"Error: no aca-l0 archive in {tmp_path / 'aca0'}")
    assert "point --archive or MICA_ARCHIVE at an archive" in run.stderr
    assert "data_root" not in run.stderr and list(tmp_path.iterdir()) == []
    run = _mica("--archive", str(tmp_path), "update", "acq-stats", "--quiet")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"Error: {tmp_path / 'obspar'}: no obspar archive")
    run = _mica(
        "--archive", str(tmp_path), "update", "vv", "--start", "2012:127", "--stop", "2012:125"
    )
    assert run.returncode == 1 and "is not after start" in run.stderr, run.stderr


# --- 5. CSV: the asked column order, a date column, numbers as stored -----------------------


def test_csv_keeps_the_order_adds_a_date_and_writes_numbers_as_stored(docs_archive, tmp_path):
    csv = tmp_path / "l0.csv"
    cols = "TEMPCCD,TIME,INTEG,BGDAVG,FILENAME"
    run = _fetch(docs_archive, "aca-l0", *L0_ONE_MINUTE, "--columns", cols, "--csv", str(csv))
    assert run.returncode == 0, run.stderr
    header, first, *_ = csv.read_text().splitlines()
    assert header == "TEMPCCD,TIME,date,INTEG,BGDAVG,FILENAME"
    tempccd, time_, date, integ, bgdavg, filename = first.split(",")
    assert integ == "1.696"  # float32: its own shortest repr, not 1.6959999799728394
    assert date.startswith("2012:125:00:00:0") and filename.endswith(".fits.gz")
    import numpy as np

    from mica.archive import aca_l0

    data = aca_l0.get_slot_data(*L0_ONE_MINUTE[1:4:2], 0, data_root=docs_archive / "aca0")
    assert np.float32(integ) == data["INTEG"][0] and np.float32(tempccd) == data["TEMPCCD"][0]
    assert float(time_) == data["TIME"][0] and time_ == repr(float(data["TIME"][0]))
    assert int(bgdavg) == data["BGDAVG"][0]
    screen = _fetch(docs_archive, "aca-l0", *L0_ONE_MINUTE, "--columns", "BGDAVG,TIME")
    assert screen.stdout.split()[:3] == ["BGDAVG", "TIME", "date"]


def test_csv_formatting_of_each_kind():
    import numpy as np
    from astropy.table import MaskedColumn, Table

    from mica.cli._output import csv_rows

    table = Table()
    table["f4"] = np.array([-16.99, 0.1], np.float32)
    table["f8"] = np.array([-16.99, 452476866.3884741])
    table["i"] = MaskedColumn([3, 4], mask=[False, True])
    table["s"] = np.array([b"ab", b"c"])
    table["b"] = [True, False]
    assert list(csv_rows(table)) == [
        ["f4", "f8", "i", "s", "b"],
        ["-16.99", "-16.99", "3", "ab", "True"],
        ["0.1", "452476866.3884741", "", "c", "False"],
    ]


# --- 6. no unclosed file on any read through the store ------------------------------------

READ_EVERY_VIEW = """
import gc, sys
seen = []
sys.unraisablehook = lambda info: seen.append(repr(info.exc_value))  # a warning in a __del__
from mica.archive import aca_hdr3, aca_l0, hdr3_samples
from mica.products.aca_l0 import HD3_VIEW_COLUMNS
from mica.products.hdr3_items import get_item
from mica.time import to_secs
root = sys.argv[1]
L0 = ("2012:125:00:00:00", "2012:125:00:10:00")
H3 = ("2012:125:12:00:00", "2012:126:00:00:00")
# the full view: columns, images (read later from the chunk: ChunkedRows), all slots
assert len(aca_l0.get_slot_data(*L0, 0, data_root=root))
assert len(aca_l0.get_l0_images(*L0, 0, data_root=root))
assert len(aca_l0.get_aca_images(*L0, data_root=root))
# the header-3 view (hd3), per slot
assert len(aca_l0.hd3_columns(*H3, [6, 7], HD3_VIEW_COLUMNS, data_root=root)[6]["TIME"])
# the header-3 sample view (hd3s)
items = {"ccd_temp": get_item("ccd_temp")}
with hdr3_samples.open_tables(items, to_secs(H3[0]), to_secs(H3[1]), root) as parts:
    assert [p.tables is not None and len(p.grid) > 0 for p in parts] == [True]
assert len(aca_hdr3.MSIDset(["ccd_temp", "dac", "aca_temp"], *H3, data_root=root).times)
gc.collect()
sys.exit("\\n".join(seen) or None)
"""


def test_no_unclosed_file_on_reads_through_every_store_view(docs_archive):
    from mica.products.aca_l0 import L0

    views = {view.name for view in L0.store_description.views}
    assert views == {"", "hd3", "hd3s"}  # a new view: read it in READ_EVERY_VIEW too
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", READ_EVERY_VIEW,
         str(docs_archive / "aca0")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0 and "ResourceWarning" not in run.stderr, run.stderr


# --- 7. guide statistics keep the original's column names, without PyTables' warning -------


def test_guide_stats_write_and_read_without_natural_name_warning(archive_copy):
    import warnings

    import tables

    args = ["--archive", str(archive_copy), "update", "guide-stats", "--obsid", "9745"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, [*args, "--quiet"])
        assert result.exit_code == 0, result.output
        fetched = CliRunner().invoke(main, [*args[:2], "fetch", "guide-stats", "--obsid", "9745"])
        assert fetched.exit_code == 0, fetched.output
    assert not [w for w in seen if issubclass(w.category, tables.NaturalNameWarning)]
    # the file is the original's: PyTables reads its columns by name, indexed on obsid
    path = archive_copy / "guide_stats" / "guide_stats.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tables.NaturalNameWarning)  # PyTables' own, as before
        with tables.open_file(path) as h5:
            table = h5.root.data
            rows = table.read_where("obsid == 9745")
            assert table.cols.obsid.is_indexed
    assert len(rows) and "f_within_0.3" in rows.dtype.names
    assert ((rows["f_within_0.3"] >= 0) & (rows["f_within_0.3"] <= 1)).all()


# --- 8. every command and option documented; the docs list what the demo writes -----------


def _commands(command, ctx) -> list:  # noqa: ANN001  (click objects)
    """(context, command) of ``command`` and every command under it."""
    import click

    out = [(ctx, command)]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            out += _commands(sub, sub.make_context(name, [], parent=ctx, resilient_parsing=True))
    return out


ALL_COMMANDS = _commands(main, main.make_context("mica", [], resilient_parsing=True))


def test_every_command_and_option_has_help_in_plain_text():
    import click

    paths = {ctx.command_path for ctx, _ in ALL_COMMANDS}
    for name in ("mica vv", "mica update acq-stats", "mica update guide-stats", "mica fetch hdr3"):
        assert name in paths
    for ctx, command in ALL_COMMANDS:
        assert command.help, ctx.command_path
        for param in command.get_params(ctx):
            if isinstance(param, click.Option):
                assert param.help, f"{ctx.command_path} {param.opts}"
        text = command.get_help(ctx)
        assert "``" not in text and not re.search(r"`\w", text), ctx.command_path  # no reST


def test_cli_reference_is_written_from_the_commands():
    spec = importlib.util.spec_from_file_location("docs_conf", REPO_ROOT / "docs" / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    rst = "\n".join(conf._command_rst(main, conf._context(main, "mica")))
    for ctx, command in ALL_COMMANDS:
        assert f"``{ctx.command_path}``" in rst
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                assert f"``{record[0]}``" in rst, (ctx.command_path, record[0])
    assert ".. click-commands:: mica.cli:main" in (REPO_ROOT / "docs" / "cli.rst").read_text()
    # code blocks wrap rather than hide their ends behind a scroll bar
    assert conf.html_css_files == ["wrap.css"] and conf.html_static_path == ["_static"]
    assert "white-space: pre-wrap" in (REPO_ROOT / "docs" / "_static" / "wrap.css").read_text()


def test_demo_page_lists_every_file_the_demo_writes():
    written = set()
    for path in (REPO_ROOT / "mica" / "demo").glob("*.py"):
        written |= set(re.findall(r'out / f?"([^"]+\.png)"', path.read_text()))
    assert len(written) == 9, written
    page = (REPO_ROOT / "docs" / "demo.rst").read_text()
    listed = set(re.findall(r"``([\w/]+\.(?:png|html))``", page))
    for name in written:  # placeholders ({obsid}) stand for the names the demo gives
        pattern = re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(name))
        assert any(re.fullmatch(pattern, shown) for shown in listed), name
    assert "vv_4387/report.html" in listed
