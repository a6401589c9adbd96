"""What a reader of ``report.html`` sees: dates (not bare CXC seconds), whether the data are
simulated, and each slot's V&V result beside its ``id_status`` (which is the star's
identification, not that result), with a line saying what the columns mean."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

from mica.time import to_date, to_secs
from mica.vv.report import VV_COLUMN, slot_verdicts, write_html

TSTART, TSTOP = to_secs("2005:208:19:25:25.521"), to_secs("2005:209:02:41:25.048")


def _info() -> dict:
    """A V&V info dict as `Obi.info` makes it: guide slot 5 identified (``id_status``
    GOOD) but failing the limits, slot 4 a warning, the fid lights fine."""
    slots = {
        str(n): {"slot": n, "type": "FID" if n < 3 else "GUIDE", "id_status": "GOOD",
                 "n_pts": 1580, "dy_med": 0.0, "dz_med": 0.0, "dy_rms": 0.01, "dz_rms": 0.01,
                 "rad_off": 0.0, "frac_dy_big": 0.0, "frac_dz_big": 0.0, "mag_med": 7.0}
        for n in range(7)
    }  # fmt: skip
    disposition = {"status": "BAD", "reasons": ["BAD: guide slot 5 alone exceeds the limits"],
                   "repro_without": 5, "bad_slots": [5], "warn_slots": [4]}  # fmt: skip
    return {"obsid": 4387, "revision": 3, "instrument": "HRC-S", "tstart": TSTART,
            "tstop": TSTOP, "intervals": [{}, {}], "vv_version": 4, "slots": slots,
            "disposition": disposition, "errors": [], "sim": {"max_d_dy": 0.0}}  # fmt: skip


class _Table(HTMLParser):
    """The cells of the ``slots`` table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._in = dict(attrs).get("id") == "slots"
        elif self._in and tag == "tr":
            self.rows.append([])
        elif self._in and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in = False
        elif self._in and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _page(tmp_path: Path, simulated: bool) -> str:
    return write_html(_info(), tmp_path, ["slot_5.png"], simulated=simulated).read_text()


def test_report_dates_and_simulated_line(tmp_path):
    page = _page(tmp_path, simulated=True)
    text = re.sub(r"<[^>]+>", "", page)
    assert to_date(TSTART) in text and to_date(TSTOP) in text  # dates a reader reads
    assert re.search(r"\(238\d+\.\d{3} CXC s\)", text)  # the seconds only beside them
    assert 'id="simulated"' in page and "SIMULATED DATA" in text and "not of flight data" in text
    flight = _page(tmp_path, simulated=False)
    assert "SIMULATED" not in flight and 'id="simulated"' not in flight


def test_slot_table_gives_each_slot_its_vv_result_beside_id_status(tmp_path):
    page = _page(tmp_path, simulated=False)
    table = _Table()
    table.feed(page)
    head, *rows = table.rows
    assert head[2:4] == ["id_status", VV_COLUMN]
    by_slot = {int(r[0]): r for r in rows}
    assert by_slot[5][2:4] == ["GOOD", "BAD"] and by_slot[4][3] == "WARN"
    assert all(by_slot[n][3] == "OK" for n in (0, 1, 2, 3, 6))
    # the shaded rows are the slots whose V&V result is not OK, and the page says so
    shaded = re.findall(r'<tr class="flag(\w+)"><td>(\d)</td>', page)
    assert sorted(shaded) == [("BAD", "5"), ("WARN", "4")]
    legend = html.unescape(re.search(r'<p class="legend">(.*?)</p>', page).group(1))
    assert "id_status" in legend and "not the V&V's result" in legend and "shaded" in legend
    assert slot_verdicts(_info()["disposition"], range(7)) == {
        0: "OK", 1: "OK", 2: "OK", 3: "OK", 4: "WARN", 5: "BAD", 6: "OK"}  # fmt: skip
