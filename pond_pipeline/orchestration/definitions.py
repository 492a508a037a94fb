"""The code location: ``defs`` built from ``pond.yaml`` (its working directory's, or the
file env ``POND_CONFIG`` names) plus the pond's other persisted dynamic nodes.

Loading only reads: it never creates the pond or writes to it.
"""

from pond_pipeline.orchestration.build import build_definitions

__all__ = ["build_definitions", "defs"]

defs = build_definitions()
