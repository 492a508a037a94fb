"""``pond.json``: the pond's settings as a model (defaults, round trip, clear errors)."""

from pathlib import Path

import pytest

from pond_pipeline.errors import ConfigError
from pond_pipeline.store.settings import PondSettings


def test_missing_file_means_the_defaults(tmp_path: Path) -> None:
    settings = PondSettings.read(tmp_path / "pond.json")

    assert (settings.inline_threshold, settings.query_timeout) == (65536, 300.0)


def test_written_settings_read_back(tmp_path: Path) -> None:
    path = tmp_path / "pond.json"
    PondSettings(inline_threshold=10, query_timeout=1.5).write(path)

    assert PondSettings.read(path) == PondSettings(inline_threshold=10, query_timeout=1.5)


def test_a_misspelled_setting_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pond.json"
    path.write_text('{"query_timout": 5}')

    with pytest.raises(ConfigError) as caught:
        PondSettings.read(path)

    assert caught.value.subject == str(path)
    assert caught.value.reason == (
        "unknown setting 'query_timout' (settings are inline_threshold, query_timeout)"
    )
    assert caught.value.hint == "fix it, or delete it to use the defaults"


@pytest.mark.parametrize("value", ["true", "1e13", "-1", '"5"'])
def test_a_setting_must_be_a_number_in_range(tmp_path: Path, value: str) -> None:
    path = tmp_path / "pond.json"
    path.write_text(f'{{"inline_threshold": {value}}}')

    with pytest.raises(ConfigError) as caught:
        PondSettings.read(path)

    assert caught.value.reason.startswith("inline_threshold must be a number of bytes >= 0, not ")
