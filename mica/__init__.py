"""mica: retrieve, archive and serve Chandra ACA telemetry and aspect products.

Diagnostics go to ``logging.getLogger("mica")`` (and its children ``mica.<module>``), silent
unless the application configures logging (``mica -v`` does, on stderr).
"""

import logging as _logging

__version__ = "0.1.0"

# A library logs, the application decides where: nothing is shown unless configured.
_logging.getLogger("mica").addHandler(_logging.NullHandler())
