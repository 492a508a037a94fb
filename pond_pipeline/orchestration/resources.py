"""The pond as a Dagster resource."""

from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from pond_pipeline import pipeline as pipelines
from pond_pipeline.api import Pond


class PondResource(ConfigurableResource):
    """Opens the pond named by ``pond.yaml`` (or ``POND``) for one run.

    ``config_path`` empty means env ``POND_CONFIG``, else ``pond.yaml`` in the working
    directory. SQL sessions borrow their DuckDB connections from dagster-duckdb.
    """

    config_path: str = ""

    def load_pipeline(self, pond: Pond | None = None) -> pipelines.Pipeline:
        return pipelines.load(self.config_path or None, pond=pond)

    def open(self, duckdb: DuckDBResource) -> Pond:
        pond = pipelines.open_pond(self.load_pipeline(), create=True)
        pond.connector = duckdb.get_connection
        return pond
