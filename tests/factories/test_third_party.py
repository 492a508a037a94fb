"""A factory from another distribution plugs in through the entry point, core unchanged."""

import sys
import textwrap

import pytest

from pond_pipeline.dynamic import registry
from pond_pipeline.errors import ConfigError

PLUGIN = """
from pond_pipeline.factory import Factory, FactoryConfig
from pond_pipeline.factory import EntryType


class GreetingConfig(FactoryConfig):
    name: str
    times: int = 1


class GreetingFactory(Factory[GreetingConfig]):
    name = "greeting"
    Config = GreetingConfig
    produces = EntryType.DATA
    description = "Says hello."

    def produce(self, config, context):
        return ("hello " + config.name + "\\n").encode() * config.times
"""


@pytest.fixture
def greeting_plugin(tmp_path, monkeypatch):
    """The distribution ``xyz`` (module ``xyz_greeting``) importable from ``tmp_path``."""
    site = tmp_path / "site"
    dist_info = site / "xyz-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: xyz\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [pond.factories]
            greeting = xyz_greeting:GreetingFactory
            """
        )
    )
    (site / "xyz_greeting.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    registry.installed.cache_clear()
    yield
    registry.installed.cache_clear()
    sys.modules.pop("xyz_greeting", None)


def test_entry_point_factory_creates_and_reads(pond, greeting_plugin):
    pond.create_dynamic("/hello.txt", "greeting", {"name": "pond", "times": 2})

    assert pond.read_bytes("/hello.txt") == b"hello pond\nhello pond\n"
    assert "greeting" in {info.name for info in pond.factories()}
    assert "sql_derived_series" in registry.installed()  # the built-ins are still there


def test_entry_point_factory_config_is_validated(pond, greeting_plugin):
    with pytest.raises(ConfigError, match="times: Input should be a valid integer"):
        pond.create_dynamic("/hello.txt", "greeting", {"name": "pond", "times": "many"})
