"""The pond as a Dagster resource."""

from pathlib import Path

from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from pond_pipeline.api import Pond, PondOptions
from pond_pipeline.errors import NotFoundError


class PondResource(ConfigurableResource):
    """Opens the pipeline's pond for one run (creating it on the first run).

    ``uri`` is the pond's; ``host_root`` the folder relative host paths resolve against
    (``pond.yaml``'s). SQL sessions borrow their DuckDB connections from dagster-duckdb.
    """

    uri: str
    host_root: str = ""

    def open(self, duckdb: DuckDBResource) -> Pond:
        options = PondOptions(
            host_root=Path(self.host_root) if self.host_root else None,
            connector=duckdb.get_connection,
        )
        try:
            return Pond.open(self.uri, options)
        except NotFoundError:
            return Pond.create(self.uri, options=options)
