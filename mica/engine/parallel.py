"""Kept for importers: the process map lives in `mica.engine.executors.process`."""

from mica.engine.executors.process import default_workers, process_map

__all__ = ["default_workers", "process_map"]
