"""The base of every typed config in pond (factory configs and ``pond.yaml``)."""

from pydantic import BaseModel, ConfigDict


class PondModel(BaseModel):
    """Unknown keys are errors (reported with their path); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
