"""The demo's publish and sync: the archive served on 127.0.0.1, its header-3 views copied.

`demo_sync` publishes the demo archive (`mica.sync.publish`), serves it as it lies with the
standard library's static server on a free loopback port (what ``python -m http.server``
does), syncs the header-3 views of the demo's header-3 window into a second archive
(``<out>/laptop``, `mica.sync.run`) and reads ``ccd_temp`` from both.
"""

from __future__ import annotations

import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from mica.archive import aca_hdr3
from mica.sync.manifest import Selection
from mica.sync.publish import publish
from mica.sync.run import sync
from mica.time import to_secs


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no access log on the demo's output
        pass


def demo_sync(root: Path, out: Path, window: tuple[str, str]) -> list[str]:
    """Publish ``root``, serve it on loopback, sync the header-3 views of ``window`` into
    ``out/laptop``; returns the lines to show."""
    t0 = time.perf_counter()
    lines = [publish(root).summary().splitlines()[0]]
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    laptop = out / "laptop"
    try:
        selection = Selection(to_secs(window[0]), to_secs(window[1]))
        report = sync(url, ["aca-hdr3"], selection, archive=laptop)
        again = sync(url, ["aca-hdr3"], selection, archive=laptop)
    finally:
        httpd.shutdown()
        httpd.server_close()
    lines += report.summary().splitlines()
    lines.append(f"again, up to date: {again.received} bytes received (the head)")
    ours = aca_hdr3.MSID("ccd_temp", *window, data_root=laptop / "aca0")
    theirs = aca_hdr3.MSID("ccd_temp", *window, data_root=root / "aca0")
    same = np.array_equal(ours.times, theirs.times) and np.ma.allequal(ours.vals, theirs.vals)
    lines.append(
        f"ccd_temp from {laptop}: {len(ours.vals)} samples, "
        f"{'the same as' if same else 'DIFFERENT from'} the demo archive's "
        f"({time.perf_counter() - t0:.1f} s for publish, sync and the check)"
    )
    return lines
