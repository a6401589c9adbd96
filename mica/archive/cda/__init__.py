"""The Chandra Data Archive's public web services, under the original mica's import path.

`get_ocat_web`, `get_ocat_local`, `get_archive_file_list`, `get_proposal_abstract` (and
`mica.archive.cda.services.update_ocat_local`) with the original's parameters, column names
and types. They are clients of the public services, not readers of the archive: the one
module of `mica.archive` that uses a source (`mica.sources.cda_services`, named in the
import contract of ``pyproject.toml``).
"""

from mica.archive.cda.services import (
    get_archive_file_list,
    get_ocat_local,
    get_ocat_web,
    get_proposal_abstract,
)

__all__ = ["get_archive_file_list", "get_ocat_local", "get_ocat_web", "get_proposal_abstract"]
