"""The ``Pond`` facade: open or create a pond, read any node, change it in transactions.

    pond = Pond.create("./my.pond")
    with pond.transaction("load sensors") as tx:
        tx.mkdir("/sensors")
        tx.copy("north.csv", "/sensors/north.series", "series")
    pond.read_table("/sensors/north.series", time_start=datetime(2024, 1, 1))

Every ``transaction`` is one Delta commit taken under the pond's write lock: all of
its changes land together, or (on any exception) none do.
"""

from pond_pipeline.api.catalog import DynamicNode, NodeInfo
from pond_pipeline.api.options import PondOptions
from pond_pipeline.api.pond import Pond
from pond_pipeline.api.transaction import PondTransaction
from pond_pipeline.dynamic.nodes import Node, TimeRange
from pond_pipeline.fs.verify import VerifyReport
from pond_pipeline.store.oplog import OplogRecord

__all__ = [
    "DynamicNode",
    "Node",
    "NodeInfo",
    "OplogRecord",
    "Pond",
    "PondOptions",
    "PondTransaction",
    "TimeRange",
    "VerifyReport",
]
