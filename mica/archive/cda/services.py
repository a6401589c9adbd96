"""The original's ``mica.archive.cda.services``: the CDA web services and the local Ocat copy
(implemented in `mica.sources.cda_services`, see there)."""

from mica.sources.cda_services import (
    CDA_SERVICES,
    OCAT_UNITS,
    URL_CDA_SERVICES,
    get_archive_file_list,
    get_ocat_local,
    get_ocat_web,
    get_proposal_abstract,
    ocat_table_path,
    update_ocat_local,
)

__all__ = [
    "CDA_SERVICES",
    "OCAT_UNITS",
    "URL_CDA_SERVICES",
    "get_archive_file_list",
    "get_ocat_local",
    "get_ocat_web",
    "get_proposal_abstract",
    "ocat_table_path",
    "update_ocat_local",
]
