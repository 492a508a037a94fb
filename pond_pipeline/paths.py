"""Pond paths: absolute, ``/``-separated, never escaping the root; and globs over them."""

import functools
import re
from collections.abc import Sequence

from pond_pipeline.errors import ConfigError

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_DEPTH = 256
GLOB_CHARS = frozenset("*?[")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize(path: str) -> str:
    """``data//a/./b/../c`` → ``/data/a/c``. Relative paths start at the root.

    ``..`` above the root, NUL and other control characters, text that is not UTF-8,
    names longer than 255 bytes, paths longer than 4096 bytes or deeper than 256
    levels are errors.
    """
    if not isinstance(path, str) or path == "":
        raise ConfigError("empty pond path", hint="write an absolute path such as /data/a.series")
    if "\x00" in path:
        raise ConfigError("a pond path cannot contain NUL", subject=_shown(path))
    if _CONTROL.search(path):
        raise ConfigError(
            "a pond path cannot contain control characters (newline, tab, ...)",
            subject=_shown(path),
        )
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigError("a pond path must be valid UTF-8 text", subject=_shown(path)) from None
    if size > MAX_PATH_BYTES:
        raise ConfigError(f"a path is longer than {MAX_PATH_BYTES} bytes", subject=_shown(path))
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise ConfigError(
                    "path escapes the pond's root", subject=path, hint="remove the extra '..'"
                )
            parts.pop()
            continue
        if len(segment.encode("utf-8")) > MAX_NAME_BYTES:
            raise ConfigError(
                f"a name is longer than {MAX_NAME_BYTES} bytes", subject=path[:80] + "…"
            )
        parts.append(segment)
        if len(parts) > MAX_DEPTH:
            raise ConfigError(f"a path is deeper than {MAX_DEPTH} levels", subject=_shown(path))
    return "/" + "/".join(parts)


def _shown(path: str) -> str:
    """A bad path as an error shows it: escaped, on one line, at most 80 characters."""
    text = path if path.isprintable() else repr(path)
    return text if len(text) <= 80 else text[:79] + "…"


def split(path: str) -> list[str]:
    """The segments of a normalized path (the root has none)."""
    return [segment for segment in path.split("/") if segment]


def join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def parent_and_name(path: str) -> tuple[str, str]:
    segments = split(path)
    if not segments:
        raise ConfigError("the root has no parent", subject="/")
    return "/" + "/".join(segments[:-1]), segments[-1]


def is_glob(pattern: str) -> bool:
    return any(char in GLOB_CHARS for char in pattern)


def glob_prefix(pattern: str) -> list[str]:
    """The literal leading segments of a pattern (where a walk can start)."""
    prefix: list[str] = []
    for segment in split(pattern):
        if is_glob(segment) or segment == "**":
            break
        prefix.append(segment)
    return prefix


def match_segments(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    """Whether ``segments`` match ``pattern``, where ``**`` is any number of segments."""
    return _match(pattern, segments, [])


def could_descend(pattern: Sequence[str], segments: Sequence[str]) -> bool:
    """Whether something *below* ``segments`` may match ``pattern`` (prunes a walk)."""
    for index, segment in enumerate(segments):
        if index >= len(pattern):
            return False
        if pattern[index] == "**":
            return True
        if not _segment_regex(pattern[index]).fullmatch(segment):
            return False
    return len(pattern) > len(segments)


def glob_captures(pattern: str, path: str) -> list[str] | None:
    """What each wildcard segment of ``pattern`` matched in ``path`` (None: no match).

    ``/sites/*/temp.series`` against ``/sites/north/temp.series`` → ``["north"]``.
    Each ``*`` and ``?`` within a segment is its own capture; ``**`` captures the
    joined segments it spans (``""`` for none, as many as it can when there is a
    choice); ``[...]`` classes are not captures.
    """
    captures: list[str] = []
    return captures if _match(split(pattern), split(path), captures) else None


def wildcard_count(pattern: str) -> int:
    """How many captures ``glob_captures`` gives for ``pattern``."""
    return sum(1 if s == "**" else _segment_regex(s).groups for s in split(pattern))


def _match(pattern: Sequence[str], segments: Sequence[str], captures: list[str]) -> bool:
    """``match_segments`` that appends what each wildcard matched to ``captures``."""
    if not pattern:
        return not segments
    head, rest = pattern[0], pattern[1:]
    kept = len(captures)
    if head == "**":  # the longest span first, down to none
        for stop in range(len(segments), -1, -1):
            captures.append("/".join(segments[:stop]))
            if _match(rest, segments[stop:], captures):
                return True
            del captures[kept:]
        return False
    found = _segment_regex(head).fullmatch(segments[0]) if segments else None
    if found is None:
        return False
    captures.extend(found.groups())
    if _match(rest, segments[1:], captures):
        return True
    del captures[kept:]
    return False


@functools.lru_cache(maxsize=1024)
def _segment_regex(segment: str) -> re.Pattern[str]:
    """One segment's glob as ``fnmatch.fnmatchcase`` reads it, each ``*``/``?`` a group."""
    regex = ""
    for star, mark, members, char in _GLOB_TOKEN.findall(segment):
        if star:
            regex += "(.*)"
        elif mark:
            regex += "(.)"
        elif members:
            regex += _class_regex(members)
        else:
            regex += re.escape(char)
    return re.compile(regex, re.DOTALL)


# ``[...]`` as fnmatch finds its end: a ``]`` right after ``[`` or ``[!`` is a member, and
# a ``[`` without a closing ``]`` is literal (possessive, so ``[!]`` stays literal too)
_GLOB_TOKEN = re.compile(r"(\*)|(\?)|\[(!?+\]?+[^\]]*+)\]|(.)", re.DOTALL)


def _class_regex(members: str) -> str:
    """``[a-c_]``/``[!a]`` as fnmatch reads them; an empty range (``z-a``) matches nothing."""
    negate, members = members.startswith("!"), members.removeprefix("!")
    parts = [
        re.escape(one) if one else f"{re.escape(low)}-{re.escape(high)}"
        for low, high, one in re.findall(r"(.)-(.)|(.)", members, re.DOTALL)
        if one or low <= high
    ]
    if not parts:
        return "." if negate else "(?!)"
    return f"[{'^' if negate else ''}{''.join(parts)}]"
