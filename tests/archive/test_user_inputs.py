"""Inputs as users write them: times, scalars for lists, column-name case."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from click.testing import CliRunner

from mica.archive import aca_hdr3, aca_l0, asp_l1, obspar
from mica.cli import main

START, STOP = "2003:215:03:10:00", "2003:215:03:20:00"


def test_readers_take_datetime_and_datetime64(real_l0_archive):
    ref = aca_l0.get_slot_data(START, STOP, 0, columns=["TIME"], data_root=real_l0_archive)
    assert len(ref) > 100
    start = datetime.datetime(2003, 8, 3, 3, 10)  # 2003:215 is 3 August
    stop = np.datetime64("2003-08-03T03:20:00")
    got = aca_l0.get_slot_data(start, stop, 0, columns=["TIME"], data_root=real_l0_archive)
    assert np.array_equal(got["TIME"], ref["TIME"])
    msid = aca_hdr3.MSID("ccd_det_therm", start, stop, data_root=real_l0_archive)
    assert len(msid.times) > 10
    assert np.array_equal(
        msid.times, aca_hdr3.MSID("ccd_det_therm", START, STOP, data_root=real_l0_archive).times
    )


def test_stop_not_after_start_is_an_error_in_every_reader(real_l0_archive):
    calls = [
        lambda: aca_l0.get_slot_data(STOP, START, 0, data_root=real_l0_archive),
        lambda: aca_l0.get_files(start=STOP, stop=START, data_root=real_l0_archive),
        lambda: aca_l0.get_l0_images(STOP, START, 0, data_root=real_l0_archive),
        lambda: aca_l0.get_aca_images(STOP, START, data_root=real_l0_archive),
        lambda: aca_hdr3.MSIDset(["ccd_temp"], STOP, START, data_root=real_l0_archive),
        lambda: asp_l1.get_files(start=STOP, stop=START),
        lambda: obspar.get_files(start=STOP, stop=START),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=f"stop {START}.000 is not after start {STOP}"):
            call()


@pytest.mark.parametrize(
    "args",
    [
        ["fetch", "aca-l0", "--slot", "0"],
        ["fetch", "hdr3", "ccd_temp"],
        ["update", "aca-l0", "--source", "sim"],
    ],
)
def test_cli_refuses_reversed_range_and_compact_dates(args, real_l0_archive):
    runner = CliRunner()
    out = runner.invoke(
        main, ["--archive", str(real_l0_archive.parent), *args, "--start", STOP, "--stop", START]
    )
    assert out.exit_code != 0 and "is not after start" in out.output, out.output
    out = runner.invoke(main, [*args, "--start", "20120101", "--stop", "2012:002"])
    assert out.exit_code != 0 and "'2012:001' or '2012-01-01'" in out.output, out.output


def test_scalars_for_lists_and_any_case_columns(real_l0_archive):
    kw = dict(data_root=real_l0_archive)
    ref = aca_l0.get_slot_data(START, STOP, 0, imgsize=[8], columns=["TIME", "TEMPCCD"], **kw)
    assert len(ref) > 100
    for imgsize in (8, np.int64(8), (8,)):
        for columns in (["time", "TempCCD"], ["TIME", "tempccd"]):
            got = aca_l0.get_slot_data(START, STOP, 0, imgsize=imgsize, columns=columns, **kw)
            assert got.dtype.names == ("TIME", "TEMPCCD")
            assert np.array_equal(got["TEMPCCD"], ref["TEMPCCD"])
    one = aca_l0.get_slot_data(START, STOP, 0, columns="TEMPCCD", **kw)
    assert one.dtype.names == ("TEMPCCD",) and len(one) >= len(ref)
    assert len(aca_l0.get_files(start=START, stop=STOP, slots=0, imgsize=8, **kw)) >= 1
    images = aca_l0.get_l0_images(START, STOP, 0, imgsize=8, columns="time", **kw)
    assert images and set(images[0].meta) == {"TIME", "IMGROW0", "IMGCOL0"}
    with pytest.raises(ValueError, match=r"unknown L0 columns \['TEMPCC'\]"):
        aca_l0.get_slot_data(START, STOP, 0, columns="TEMPCC", **kw)
    with pytest.raises(ValueError, match="imgsize must be among"):
        aca_l0.get_slot_data(START, STOP, 0, imgsize=5, **kw)


def test_one_slot_readers_refuse_what_is_not_one_slot(real_l0_archive):
    """A reader of one slot's rows given several slots, None, a fraction or a bool refuses
    it: it read the first of a list (or slot 0, or the truncated number) as if that were
    what was asked. A whole number of any integer type (or float) is that slot."""
    kw = dict(data_root=real_l0_archive)
    ref = aca_l0.get_slot_data(START, STOP, 1, columns=["TIME", "FILENAME"], **kw)
    assert len(ref) > 100 and all("_1_img" in name for name in ref["FILENAME"])
    for slot in (np.int64(1), np.array(1), 1.0):
        got = aca_l0.get_slot_data(START, STOP, slot, columns=["TIME", "FILENAME"], **kw)
        assert np.array_equal(got["TIME"], ref["TIME"])
    assert aca_l0.MSID("TEMPCCD", np.int64(1), START, STOP, **kw).slot == 1
    readers = [
        lambda slot: aca_l0.get_slot_data(START, STOP, slot, **kw),
        lambda slot: aca_l0.get_l0_images(START, STOP, slot, **kw),
        lambda slot: aca_l0.MSID("TEMPCCD", slot, START, STOP, **kw),
        lambda slot: aca_l0.MSIDset(["TEMPCCD"], START, STOP, slot, **kw),
    ]
    for read in readers:
        for slot in ([0, 1], [1], (1, 0), None, 3.5, True, "1"):
            with pytest.raises(ValueError, match=r"slot must be (one slot number )?among"):
                read(slot)
    for slots in ([1.5], [True], ["0"]):
        with pytest.raises(ValueError, match="slots must be among"):
            aca_l0.get_files(start=START, stop=STOP, slots=slots, **kw)
    assert len(aca_l0.get_files(start=START, stop=STOP, slots=[0, 1.0], **kw)) >= 2
