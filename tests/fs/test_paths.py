"""Pond paths: normalization and globs, as properties over generated paths."""

import fnmatch
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
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


# -- the glob syntax against fnmatch -------------------------------------------------------------
# A small alphabet with a capital letter, so that matches are common and case counts. Each
# piece of a glob segment comes with a strategy for the text it matches.
ALPHABET = "abA"
PIECES: dict[str, st.SearchStrategy[str]] = {
    "*": st.text(ALPHABET, max_size=2),
    "?": st.sampled_from(ALPHABET),
    "[ab]": st.sampled_from("ab"),
    "[!a]": st.sampled_from("bA"),
    "a": st.just("a"),
    "b": st.just("b"),
    "A": st.just("A"),
}
glob_pieces = st.lists(st.sampled_from(sorted(PIECES)), min_size=1, max_size=3)
glob_segments = st.one_of(st.just("**"), glob_pieces.map("".join))  # "*" + "*" is a "**" too
globs = st.lists(glob_segments, max_size=4)
plain_paths = st.lists(st.text(ALPHABET, min_size=1, max_size=3), max_size=5)


def fnmatch_segments(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    """The reference: fnmatchcase per segment, ``**`` spanning any number of segments."""
    if not pattern:
        return not segments
    if pattern[0] == "**":
        return any(fnmatch_segments(pattern[1:], segments[i:]) for i in range(len(segments) + 1))
    return (
        bool(segments)
        and fnmatch.fnmatchcase(segments[0], pattern[0])
        and fnmatch_segments(pattern[1:], segments[1:])
    )


@settings(max_examples=200)
@given(pattern=globs, segments=plain_paths)
def test_match_segments_agrees_with_fnmatch(pattern: list[str], segments: list[str]) -> None:
    assert paths.match_segments(pattern, segments) is fnmatch_segments(pattern, segments)


@settings(max_examples=200)
@given(pattern=globs, segments=plain_paths)
def test_captures_exist_exactly_when_the_pattern_matches(
    pattern: list[str], segments: list[str]
) -> None:
    glob, path = "/" + "/".join(pattern), "/" + "/".join(segments)
    captures = paths.glob_captures(glob, path)
    assert (captures is not None) is paths.match_segments(pattern, segments)
    if captures is None:
        return
    assert len(captures) == paths.wildcard_count(glob)
    if "[" not in glob:  # put each capture back in place of its wildcard: the path again
        left = iter(captures)
        rebuilt = [
            next(left) if s == "**" else "".join(next(left) if c in "*?" else c for c in s)
            for s in pattern
        ]
        assert "/" + "/".join(s for s in rebuilt if s) == path


@settings(max_examples=100)
@given(pattern=st.lists(st.one_of(st.just(["**"]), glob_pieces), max_size=4), data=st.data())
def test_could_descend_to_every_match(pattern: list[list[str]], data: st.DataObject) -> None:
    segments: list[str] = []  # drawn to match, piece by piece
    for pieces in pattern:
        if pieces == ["**"]:
            segments += data.draw(st.lists(st.text(ALPHABET, min_size=1, max_size=2), max_size=2))
        elif set(pieces) == {"*"}:  # stars alone: any name (a "**" too: one segment)
            segments.append(data.draw(st.text(ALPHABET, min_size=1, max_size=3)))
        else:
            segments.append("".join(data.draw(PIECES[piece]) for piece in pieces))
    globbed = ["".join(pieces) for pieces in pattern]
    assert paths.match_segments(globbed, segments)
    for cut in range(len(segments)):
        assert paths.could_descend(globbed, segments[:cut])


@pytest.mark.parametrize(
    ("glob", "name", "matches"),
    [
        ("[!]x]", "y", True),  # a "]" right after "[" or "[!" is a member
        ("[!]x]", "]", False),
        ("[]]", "]", True),
        ("[!]", "[!]", True),  # no closing "]": literal
        ("[a-c-]", "-", True),
        ("[z-a]", "z", False),  # an empty range matches nothing
        ("[!z-a]", "q", True),
        ("[^a]", "^", True),
        ("a**b", "ab", True),  # not a "**" segment
        ("[a-z]", "Q", False),
    ],
)
def test_odd_classes_read_as_fnmatch_reads_them(glob: str, name: str, matches: bool) -> None:
    assert fnmatch.fnmatchcase(name, glob) is matches
    assert paths.match_segments([glob], [name]) is matches
