"""`require_synced` keeps a product folder's parsed sync record between reads, and sees every
change a sync makes to it (the record is replaced whole) at the next read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mica.engine.atomic import write_bytes_atomic
from mica.engine.synced import SYNC_RECORD, require_synced
from mica.errors import MissingDataError

DAY = 86400.0
T0 = 4.5e8  # 2012


def _write(root: Path, start: float, stop: float) -> None:
    """A sync record of aca-l0 over [start, stop], written as `mica sync` writes it."""
    selection = {"start": start, "stop": stop}
    record = {"products": {"aca-l0": {"server": "http://x", "selections": [selection]}}}
    write_bytes_atomic(root / SYNC_RECORD, json.dumps(record).encode(), durable=False)


def test_a_changed_record_is_seen_at_the_next_read(tmp_path: Path) -> None:
    root = tmp_path / "aca0"
    root.mkdir()
    require_synced(root, ["aca-l0"], T0, T0 + DAY)  # no record: updated here, all served
    _write(root, T0, T0 + DAY)
    require_synced(root, ["aca-l0"], T0, T0 + DAY)
    with pytest.raises(MissingDataError, match="sync http://x"):
        require_synced(root, ["aca-l0"], T0, T0 + 2 * DAY)
    _write(root, T0, T0 + 2 * DAY)  # a second sync widened it, between two reads
    require_synced(root, ["aca-l0"], T0, T0 + 2 * DAY)
    _write(root, T0, T0 + DAY / 2)  # and a record of the same size, narrower
    with pytest.raises(MissingDataError):
        require_synced(root, ["aca-l0"], T0, T0 + DAY)
    (root / SYNC_RECORD).unlink()  # gone: a folder updated here again
    require_synced(root, ["aca-l0"], T0, T0 + 2 * DAY)
