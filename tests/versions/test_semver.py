"""Semantic versions: parsing, precedence, bumps, and the latest of a list."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmodel.semver import BadVersionError, Semver, latest


@pytest.mark.parametrize("text", ["1.2.3", "v1.2.3", "0.0.0", "2.0.0-rc.1", "1.0.0-alpha.beta", "1.0.0+build.5",
                                  "10.20.30", "1.0.0-0.3.7", "1.0.0-x-y-z.--"])
def test_valid_versions_round_trip(text: str) -> None:
    assert str(Semver.parse(text)) == text.lstrip("v")


@pytest.mark.parametrize("text", ["1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "a.b.c", "",
                                  "1.2.3-rc..1", "v", "1.2.3 ", "-1.2.3"])
def test_invalid_versions_are_refused_with_one_line(text: str) -> None:
    with pytest.raises(BadVersionError) as info:
        Semver.parse(text)
    assert "is not a semantic version" in str(info.value) and "\n" not in str(info.value)


def test_precedence_follows_semver_org() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    parsed = [Semver.parse(t) for t in ordered]
    assert sorted(reversed(parsed), key=Semver.key) == parsed


@pytest.mark.parametrize(
    ("start", "part", "expected"),
    [("1.2.3", "major", "2.0.0"), ("1.2.3", "minor", "1.3.0"), ("1.2.3", "patch", "1.2.4"),
     ("2.0.0-rc.1", "patch", "2.0.0"), ("2.0.0-rc.1", "minor", "2.1.0"), ("0.9.9", "major", "1.0.0")],
)
def test_bumps(start: str, part: str, expected: str) -> None:
    assert str(Semver.parse(start).bump(part)) == expected


def test_latest_prefers_releases() -> None:
    vs = [Semver.parse(t) for t in ("1.0.0", "1.2.0", "2.0.0-rc.1", "1.10.0")]
    assert str(latest(vs)) == "1.10.0"
    assert str(latest([Semver.parse("2.0.0-rc.1"), Semver.parse("2.0.0-rc.2")])) == "2.0.0-rc.2"
    assert latest([]) is None


versions = st.builds(
    Semver, st.integers(0, 30), st.integers(0, 30), st.integers(0, 30),
    st.lists(st.one_of(st.integers(0, 20).map(str), st.sampled_from(["alpha", "beta", "rc", "x-y"])), max_size=3).map(tuple),
)


@given(versions)
def test_parse_of_str_is_identity(v: Semver) -> None:
    assert Semver.parse(str(v)) == v


@given(versions, st.sampled_from(["major", "minor", "patch"]))
def test_a_bump_is_always_higher_and_a_release(v: Semver, part: str) -> None:
    bumped = v.bump(part)
    assert bumped.key() > v.key()
    assert bumped.is_release


@given(st.lists(versions, min_size=1, max_size=8))
def test_latest_is_a_maximum(vs: list[Semver]) -> None:
    best = latest(vs)
    assert best in vs
    pool = [v for v in vs if v.is_release] or vs
    assert all(best.key() >= v.key() for v in pool)
