"""Semantic versions (semver.org 2.0.0): parse, order, bump."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitmodel.errors import GitModelError

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
SEMVER_RE = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
BUMPS = ("major", "minor", "patch")


class BadVersionError(GitModelError):
    """A version string is not semantic versioning."""


@dataclass(frozen=True)
class Semver:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Semver:
        """'1.2.3', '2.0.0-rc.1' or 'v1.2.3'; anything else raises BadVersionError."""
        raw = text[1:] if text.startswith("v") else text
        match = SEMVER_RE.fullmatch(raw)
        if match is None:
            raise BadVersionError(
                f"'{text}' is not a semantic version: use MAJOR.MINOR.PATCH such as 1.3.0 (or 2.0.0-rc.1)"
            )
        pre = tuple(match["pre"].split(".")) if match["pre"] else ()
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]), pre, match["build"] or "")

    @classmethod
    def maybe(cls, text: str) -> Semver | None:
        try:
            return cls.parse(text)
        except BadVersionError:
            return None

    def __str__(self) -> str:
        out = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            out += "-" + ".".join(self.pre)
        if self.build:
            out += "+" + self.build
        return out

    @property
    def is_release(self) -> bool:
        return not self.pre

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...], str]:
        """Sort key in semver precedence: a pre-release sorts before its release.

        Build metadata does not take part in precedence; it only breaks ties so that
        sorting is total and deterministic.
        """
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre, self.build)

    def bump(self, part: str) -> Semver:
        if part == "major":
            return Semver(self.major + 1, 0, 0)
        if part == "minor":
            return Semver(self.major, self.minor + 1, 0)
        if part == "patch":
            # the release a pre-release leads to comes first: 2.0.0-rc.1 --patch is 2.0.0
            return Semver(self.major, self.minor, self.patch) if self.pre else Semver(self.major, self.minor, self.patch + 1)
        raise ValueError(part)


FIRST = {"major": Semver(1, 0, 0), "minor": Semver(0, 1, 0), "patch": Semver(0, 0, 1)}


def latest(versions: list[Semver]) -> Semver | None:
    """The highest release, or the highest pre-release when there is no release yet."""
    releases = [v for v in versions if v.is_release]
    pool = releases or versions
    return max(pool, key=Semver.key) if pool else None
