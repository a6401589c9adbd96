"""Executors: where the units' side-effect-free steps run (see `base.Executor`)."""

from mica.engine.executors.base import Executor, UnitError, timed
from mica.engine.executors.inline import InlineExecutor
from mica.engine.executors.process import ProcessExecutor, process_map

__all__ = ["Executor", "InlineExecutor", "ProcessExecutor", "UnitError", "process_map", "timed"]
