"""Acquisition and guide-star statistics (``mica.stats.acq_stats``, ``mica.stats.guide_stats``).

Computed per observation from PCAD engineering telemetry, maneuvers, star catalogs and the
AGASC (`mica.stats.inputs`), stored as derived tables: the products `mica.stats.acq_product` and
`mica.stats.guide_product` (each with its table's columns, folder and file name).
"""
