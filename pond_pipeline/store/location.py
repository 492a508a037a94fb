"""A pond's URI and the folders inside it (DESIGN §1)."""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pond_pipeline.errors import ConfigError


@dataclass(frozen=True)
class PondLocation:
    """One pond = one URI. Local folders today; the URI is kept so ``s3://`` can follow."""

    uri: str
    root: Path

    @classmethod
    def parse(cls, uri: str) -> "PondLocation":
        if not uri:
            raise ConfigError(
                "no pond given",
                hint="pass --pond PATH, set POND, or run where a pond.yaml says pond: PATH",
            )
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
            path = Path(parsed.path if parsed.scheme == "file" else uri).expanduser().resolve()
            return cls(uri=uri, root=path)
        raise ConfigError(
            f"URI scheme {parsed.scheme!r} is not supported yet",
            subject=uri,
            hint="use a local folder path",
        )

    @property
    def oplog(self) -> Path:
        return self.root / "oplog"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def lock_file(self) -> Path:
        return self.root / "write.lock"

    @property
    def scratch(self) -> Path:
        """Temporary files of writers in progress (same file system as ``blobs/``)."""
        return self.root / "tmp"
