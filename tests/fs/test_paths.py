"""Pond paths: normalization and globs, as properties over generated paths."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pond_pipeline import paths
from pond_pipeline.errors import ConfigError

names = st.text(
    st.characters(blacklist_characters="/*?[", blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", ".."))
segment_lists = st.lists(names, max_size=6)
noise = st.sampled_from(["", ".", ""])  # empty segments (//) and "." disappear


@given(segments=segment_lists)
def test_normalize_of_a_clean_path_is_itself(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    assert paths.normalize(path) == path
    assert paths.split(path) == segments


@given(segments=segment_lists, extra=st.lists(noise, max_size=4), relative=st.booleans())
def test_normalize_removes_noise_and_is_idempotent(
    segments: list[str], extra: list[str], relative: bool
) -> None:
    messy = "/".join(extra + segments + extra)
    if not relative or messy == "":
        messy = "/" + messy
    clean = paths.normalize(messy)
    assert clean == "/" + "/".join(segments)
    assert paths.normalize(clean) == clean
    assert "//" not in clean
    assert clean.startswith("/")


@given(segments=segment_lists, detour=names)
def test_dot_dot_cancels_the_previous_segment(segments: list[str], detour: str) -> None:
    path = "/" + "/".join([*segments, detour, ".."])
    assert paths.normalize(path) == "/" + "/".join(segments)


@given(segments=segment_lists)
def test_dot_dot_above_the_root_is_an_error(segments: list[str]) -> None:
    escaping = "/".join([*segments, *([".."] * (len(segments) + 1))])
    with pytest.raises(ConfigError) as caught:
        paths.normalize(escaping)
    assert caught.value.reason == "path escapes the pond's root"
    assert caught.value.subject == escaping


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty pond path"),
        ("/a\x00b", "a pond path cannot contain NUL"),
        ("/" + "x" * 256, "a name is longer than 255 bytes"),
        ("../etc/passwd", "path escapes the pond's root"),
        ("/a/../../b", "path escapes the pond's root"),
    ],
)
def test_bad_paths(bad: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        paths.normalize(bad)
    assert caught.value.reason == reason


@given(segments=st.lists(names, min_size=1, max_size=6))
def test_parent_and_name_join_back(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    parent, name = paths.parent_and_name(path)
    assert paths.join(parent, name) == path
    assert name == segments[-1]


def test_the_root_has_no_parent() -> None:
    with pytest.raises(ConfigError):
        paths.parent_and_name("/")


@given(segments=st.lists(names, min_size=1, max_size=6), data=st.data())
def test_a_star_captures_the_segment_it_replaces(segments: list[str], data: st.DataObject) -> None:
    starred = data.draw(st.sets(st.integers(0, len(segments) - 1), min_size=1))
    pattern = "/" + "/".join("*" if i in starred else s for i, s in enumerate(segments))
    path = "/" + "/".join(segments)
    assert paths.is_glob(pattern)
    assert paths.match_segments(paths.split(pattern), segments)
    assert paths.glob_captures(pattern, path) == [segments[i] for i in sorted(starred)]
    # one segment more or less never matches a pattern of single-segment wildcards
    assert not paths.match_segments(paths.split(pattern), segments[:-1])
    assert not paths.match_segments(paths.split(pattern), [*segments, "extra"])


@given(head=segment_lists, tail=segment_lists, tail_name=names)
def test_double_star_spans_any_number_of_segments(
    head: list[str], tail: list[str], tail_name: str
) -> None:
    pattern = "/" + "/".join([*head, "**", tail_name])
    segments = [*head, *tail, tail_name]
    assert paths.match_segments(paths.split(pattern), segments)
    assert paths.glob_captures(pattern, "/" + "/".join(segments)) == ["/".join(tail)]
    assert paths.glob_prefix(pattern) == head


@given(segments=st.lists(names, min_size=1, max_size=5), data=st.data())
def test_could_descend_never_prunes_a_match(segments: list[str], data: st.DataObject) -> None:
    pattern = [data.draw(st.sampled_from([s, "*", "**", "?*"])) for s in segments]
    assume(paths.match_segments(pattern, segments))
    for cut in range(len(segments)):
        assert paths.could_descend(pattern, segments[:cut])


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/a/?.csv", "/a/x.csv", True),
        ("/a/?.csv", "/a/xy.csv", False),
        ("/a/*.csv", "/a/b/x.csv", False),
        ("/a/**/*.csv", "/a/x.csv", True),
        ("/a/**/*.csv", "/a/b/c/x.csv", True),
        ("/**", "/a/b", True),
        ("/a/[xy].csv", "/a/y.csv", True),
    ],
)
def test_glob_examples(pattern: str, path: str, matches: bool) -> None:
    assert paths.match_segments(paths.split(pattern), paths.split(path)) is matches
    # captures agree with matching: a list when it matches, None when not
    assert (paths.glob_captures(pattern, path) is not None) is matches


@pytest.mark.parametrize(
    ("pattern", "path", "captures"),
    [
        ("/sites/*/temp.series", "/sites/north/temp.series", ["north"]),
        ("/a/**", "/a", [""]),
        ("/**/x.csv", "/x.csv", [""]),
        ("/**/x.csv", "/a/b/x.csv", ["a/b"]),
        ("/a/[!xy]?.csv", "/a/bz.csv", ["z"]),
        ("/a/[!xy]?.csv", "/a/yz.csv", None),
    ],
)
def test_glob_captures(pattern: str, path: str, captures: list[str] | None) -> None:
    assert paths.glob_captures(pattern, path) == captures
