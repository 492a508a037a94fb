"""The kinds of node a pond holds (DESIGN §3); shared by the tree and the factory contract."""

from enum import StrEnum


class EntryType(StrEnum):
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    DATA = "file:data"
    TABLE = "file:table"
    SERIES = "file:series"

    @property
    def is_file(self) -> bool:
        return self.value.startswith("file:")

    @property
    def is_tabular(self) -> bool:
        return self in (EntryType.TABLE, EntryType.SERIES)

    @property
    def short(self) -> str:
        """``file:series`` → ``series``, as users type it (``--type series``)."""
        return self.value.removeprefix("file:")

    @classmethod
    def from_short(cls, name: str) -> "EntryType":
        for member in cls:
            if name in (member.value, member.short):
                return member
        raise ValueError(name)
