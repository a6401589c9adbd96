"""Chandra time conversions against reference vectors."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time

from mica.errors import InvalidTimeError, MicaError, TimeRangeError
from mica.time import day_end, day_start, to_date, to_secs, year_doy

VECTORS = [
    ("1998:001:00:00:00.000", 63.184),
    ("1999:204:00:00:00.000", 49075264.184),
    ("2000:001:00:00:00.000", 63072064.184),
    ("2012:001:00:00:00.000", 441763266.184),
    ("2012:020:00:00:00.000", 443404866.184),
    ("2019:272:00:00:00.000", 686102469.184),
    ("2025:001:00:00:00.000", 852076869.184),
]


@pytest.mark.parametrize("date,secs", VECTORS)
def test_reference_vectors(date, secs):
    assert to_secs(date) == pytest.approx(secs, abs=1e-6)
    assert to_date(secs) == date


def test_forms_accepted():
    secs = 441763266.184
    for form in [
        "2012:001",
        "2012:001:00:00",
        "2012:001:00:00:00",
        "2012-01-01T00:00:00",
        "2012-01-01 00:00:00.000",
        "2012-01-01",
        secs,
        np.float64(secs),
        Time("2012-01-01", scale="utc"),
        "441763266.184",
    ]:
        assert to_secs(form) == pytest.approx(secs, abs=1e-3), form
    assert to_date(1e8) == "2001:062:09:45:35.816"
    assert to_date(1e9) == "2029:252:01:45:30.816"
    assert to_secs("1997:365:23:58:56.816") == pytest.approx(0.0, abs=1e-6)


def test_arrays_and_leap_second():
    out = to_secs(np.array(["2012:001", "2012:020"]))
    assert np.allclose(out, [441763266.184, 443404866.184])
    assert to_secs("2017:001:00:00:00") - to_secs("2016:366:23:59:59") == pytest.approx(2.0)
    assert list(to_date(np.array([63.184, 441763266.184]))) == [
        "1998:001:00:00:00.000",
        "2012:001:00:00:00.000",
    ]


def test_now_and_relative(monkeypatch):
    monkeypatch.setenv("CXOTIME_NOW", "2020:100:00:00:00")
    assert to_date(None) == "2020:100:00:00:00.000"
    assert to_date("-2d") == "2020:098:00:00:00.000"


def test_bad_forms_rejected():
    for bad in ["2012:001:12", "yesterday-ish", "2012-13-45"]:
        with pytest.raises(ValueError, match="Chandra time"):
            to_secs(bad)


def test_day_helpers():
    assert year_doy("2012:366:23:00:00") == (2012, 366)
    assert to_date(day_start("2012:366:23:00:00")) == "2012:366:00:00:00.000"
    assert to_date(day_end("2012:366:23:00:00")) == "2013:001:00:00:00.000"


def test_datetime_datetime64_and_date_forms():
    """Everything CxoTime takes through astropy (datetime recursed, datetime64 was a TypeError)."""
    import datetime

    secs = to_secs("2012:125:12:00:00")
    assert to_secs(datetime.datetime(2012, 5, 4, 12, 0)) == pytest.approx(secs, abs=1e-6)
    aware = datetime.datetime(
        2012, 5, 4, 14, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert to_secs(aware) == pytest.approx(secs, abs=1e-6)
    assert to_secs(np.datetime64("2012-05-04T12:00:00")) == pytest.approx(secs, abs=1e-6)
    assert to_secs(datetime.date(2012, 5, 4)) == pytest.approx(to_secs("2012:125"), abs=1e-6)
    days = np.array(["2012-05-04", "2012-05-05"], dtype="datetime64[D]")
    assert np.allclose(to_secs(days), [to_secs("2012:125"), to_secs("2012:126")])
    mixed = to_secs([datetime.datetime(2012, 5, 4, 12), "2012:125:12:00:00", secs])
    assert np.allclose(mixed, secs)
    with pytest.raises(TypeError, match="Chandra time"):
        to_secs(object())


@pytest.mark.parametrize(
    "text,hint", [("20120101", "'2012:001' or '2012-01-01'"), ("2012125", "'2012:125'")]
)
def test_compact_date_refused_with_suggestion(text, hint):
    with pytest.raises(ValueError, match="ambiguous") as err:
        to_secs(text)
    assert hint in str(err.value)
    # seconds stay writable as strings: with a point, or 9+ digits
    assert to_secs(f"{text}.0") == float(text)
    assert to_secs("441763266") == 441763266.0


def test_time_range_refuses_stop_not_after_start():
    from mica.time import time_range

    assert time_range("2012:125", "2012:126") == (to_secs("2012:125"), to_secs("2012:126"))
    for start, stop in [("2012:126", "2012:125"), ("2012:125", "2012:125")]:
        with pytest.raises(TimeRangeError, match="stop 2012:125:00:00:00.000 is not after start"):
            time_range(start, stop)


# times astropy rolls over to another date, refused; what they became before
NOT_TIMES = {
    "2013:366": "2013 has 365 days",  # was 2014:001
    "2013:366:12:00:00": "2013 has 365 days",
    "2013:001:23:59:60": "2013:001 ends without a leap second",  # was 2013:002 00:00:00
    "2013:365:23:59:60.5": "2013:365 ends without a leap second",
    "2013-02-28T23:59:60": "2013-02-28 ends without a leap second",
    "2013-02-28 23:59:60": "2013-02-28 ends without a leap second",
    "2013-02-29": "cannot interpret",  # astropy refuses it itself
}


@pytest.mark.parametrize("text", sorted(NOT_TIMES))
def test_times_that_do_not_exist_are_refused(text):
    for value in (text, [text], np.array(["2012:001", text])):
        with pytest.raises(InvalidTimeError, match=NOT_TIMES[text]) as err:
            to_secs(value)
        assert isinstance(err.value, ValueError) and isinstance(err.value, MicaError)
        assert text in str(err.value)


@pytest.mark.parametrize(
    "text,date",
    [
        ("2012:182:23:59:60", "2012:182:23:59:60.000"),  # leap second days
        ("2016:366:23:59:60.5", "2016:366:23:59:60.500"),
        ("2012-06-30T23:59:60", "2012:182:23:59:60.000"),
        ("2012:366", "2012:366:00:00:00.000"),  # a leap year
        ("2013:365:23:59:59.9999", "2014:001:00:00:00.000"),  # exists; rounded when shown
    ],
)
def test_leap_days_and_seconds_stay_valid(text, date):
    assert to_date(text) == date
    assert to_date(np.array([text, "2012:001"]))[0] == date


@pytest.mark.parametrize("value", [True, False, np.bool_(True), [True, False]])
def test_booleans_are_not_times(value):
    with pytest.raises(InvalidTimeError) as err:
        to_secs(value)
    assert isinstance(err.value, ValueError)


def test_year_doy_of_seconds_equals_the_exact_conversion():
    """The per-day cache of `year_doy` gives astropy's answer everywhere: random times over
    the mission, every second around midnights, and the leap-second days 2012-06-30 and
    2016-12-31 (86401 s long)."""
    from mica.time import _exact_year_doy

    rng = np.random.default_rng(5)
    secs = list(rng.uniform(0, 9e8, 300))
    for day in ("2012:182", "2012:183", "2016:366", "2017:001", "2012:125"):
        midnight = to_secs(day)
        secs += list(midnight + np.arange(-3, 3.01, 0.25)) + [midnight - 0.0004, midnight + 43200]
    for value in secs:
        assert year_doy(float(value)) == _exact_year_doy(float(value)), to_date(value)
    assert year_doy(np.float64(secs[0])) == _exact_year_doy(secs[0])
