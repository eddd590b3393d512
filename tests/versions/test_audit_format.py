"""The audit event format: one valid encoding, strict reading, causal order even with skewed clocks."""

from __future__ import annotations

import json

import pytest

from conftest import Repo
from gitmodel.audit import BadEventError, Event, causal_order, decode
from gitmodel.errors import UnsupportedVersionError


def ev(at: str, model: str = "m", prev: tuple[str, ...] = (), **kw: object) -> Event:
    return Event(at=at, by="A <a@e>", event="annotated", model=model, prev=prev, **kw)  # type: ignore[arg-type]


def test_encoding_is_canonical_and_ascii() -> None:
    e = ev("2026-11-02T10:00:00.000000Z", reason="café\nnext", metrics={"f1": 0.5, "acc": 1})
    line = e.line
    assert line.startswith('{"at":"2026-11-02T10:00:00.000000Z"')
    assert "\n" not in line and line.isascii() and "caf\\u00e9\\nnext" in line
    assert list(json.loads(line)) == sorted(json.loads(line))
    assert decode(line).id == e.id == decode(line).id
    assert decode(line).reason == "café\nnext"


def test_unknown_keys_are_ignored_and_the_id_is_of_the_stored_line() -> None:
    line = ev("2026-11-02T10:00:00.000000Z").line[:-1] + ',"zz_future":1}'
    e = decode(line)
    assert e.line == line and e.id != ev("2026-11-02T10:00:00.000000Z").id


@pytest.mark.parametrize(
    ("line", "message"),
    [("not json", "not an audit event"), ("[1]", "no version 'v'"), ('{"v":1}', "'at' must be a string"),
     ('{"v":1,"at":"2026-11-02 10:00","by":"a","event":"x","model":"m"}', "'at' is not a UTC time"),
     ('{"v":1,"at":"2026-11-02T10:00:00.000000Z","by":"a","event":"x","model":"m","prev":"x"}', "'prev' must be"),
     ('{"v":1,"at":"2026-11-02T10:00:00.000000Z","by":"a","event":"x","model":"m","metrics":{"a":true}}', "'metrics'"),
     ('{"v":0,"at":"2026-11-02T10:00:00.000000Z"}', "unknown audit event format 0")],
)
def test_broken_lines_are_refused_by_name(line: str, message: str) -> None:
    with pytest.raises(BadEventError) as info:
        decode(line, "refs/notes/model (note on abc)")
    assert message in str(info.value) and str(info.value).startswith("refs/notes/model (note on abc): ")


def test_a_newer_format_needs_a_newer_release() -> None:
    with pytest.raises(UnsupportedVersionError, match="needs a newer git-model"):
        decode('{"v":2,"at":"x"}')


def test_causal_order_puts_parents_first_even_when_clocks_disagree() -> None:
    root = ev("2026-11-02T10:00:00.000000Z")
    child = ev("2026-11-02T09:00:00.000000Z", prev=(root.id,))  # a clone whose clock is an hour late
    other = ev("2026-11-02T09:30:00.000000Z", model="n")
    assert [e.id for e in causal_order([child, other, root])] == [other.id, root.id, child.id]
    fork_a = ev("2026-11-02T11:00:00.000000Z", prev=(root.id,), reason="a")
    fork_b = ev("2026-11-02T11:00:00.000000Z", prev=(root.id,), reason="b")
    join = ev("2026-11-02T12:00:00.000000Z", prev=tuple(sorted((fork_a.id, fork_b.id))))
    order = causal_order([join, fork_b, fork_a, root])
    assert order[0] == root and order[-1] == join
    assert order == causal_order(list(reversed(order)))  # the same in every clone


def test_add_on_an_unborn_branch_records_its_event(tmp_path, env) -> None:  # type: ignore[no-untyped-def]
    from conftest import run

    repo = Repo(tmp_path / "r", env)
    repo.path.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo.path, env)
    repo.gm("init", "-q")
    (repo.path / "w.bin").write_bytes(b"weights" * 100)
    repo.gm("add", "-q", "w.bin")
    (e,) = json.loads(repo.gm("audit", "--json").stdout)["events"]
    assert (e["event"], e["model"], e["pointer"]) == ("added", "w", "w.bin.model.toml")
    repo.commit("first")
    assert repo.gm("audit", "--verify").stdout == "ok: 1 event(s) verified\n"
