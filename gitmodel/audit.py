"""Audit events (docs/audit-format.md): one JSON line each, in Git notes under refs/notes/model."""

from __future__ import annotations

import getpass
import hashlib
import heapq
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import datetime, timezone
from typing import Any

from gitmodel.errors import GitModelError, UnsupportedVersionError
from gitmodel.gitrepo import GitRepo

NOTES_REF = "refs/notes/model"
EVENT_VERSION = 1
MIN_EVENT_VERSION = 1
KINDS = ("added", "tagged", "promoted", "rolled-back", "deprecated", "annotated")
# Registry decisions whose notes commit is signed when the user signs tags (a tag is signed itself).
SIGNED = ("promoted", "rolled-back", "deprecated")
# Where `git fetch` puts each remote's notes: outside refs/notes/, so that the push refspec
# `refs/notes/model*` never matches them, and a diverged history never makes a fetch fail.
REMOTE_NOTES = "refs/model-remotes/{remote}/notes/model"
FETCH_REFSPECS = ("+refs/notes/model*:refs/model-remotes/{remote}/notes/model*", "refs/tags/model/*:refs/tags/model/*")
# A glob, so a push from a clone that has no events yet is not an error; HEAD keeps a plain
# `git push` pushing the current branch once remote.<name>.push is set.
PUSH_REFSPECS = ("refs/tags/model/*:refs/tags/model/*", "refs/notes/model*:refs/notes/model*")
FIELDS = {"v", "at", "by", "event", "model", "version", "commit", "pointer", "digests", "stage", "replaced",
         "metrics", "reason", "prev", "tag"}


class BadEventError(GitModelError):
    """A line in refs/notes/model is not a valid audit event."""


def now() -> str:
    """UTC time with microseconds, the one encoding of `at`: 2026-11-02T10:00:00.000000Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time (`2026-11-02`, `2026-11-02T10:00Z`, with an offset...); naive means UTC."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise GitModelError(
            f"'{text}' is not a date: use ISO 8601, such as 2026-11-02 or 2026-11-02T10:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


_AT_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def event_time(at: str) -> datetime:
    return datetime.fromisoformat(at[:-1] + "+00:00")  # fromisoformat is C; strptime is slow


@dataclass(frozen=True)
class Event:
    """One audit event; `line` is its one valid encoding and `id` the digest the chain uses."""

    at: str
    by: str
    event: str
    model: str
    prev: tuple[str, ...] = ()
    version: str | None = None
    commit: str | None = None
    pointer: str | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    stage: str | None = None
    replaced: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str | None = None
    tag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"v": EVENT_VERSION, "at": self.at, "by": self.by, "event": self.event,
                               "model": self.model, "prev": list(self.prev)}
        for key in ("version", "commit", "pointer", "stage", "replaced", "reason", "tag"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        if self.digests:
            doc["digests"] = dict(self.digests)
        if self.metrics:
            doc["metrics"] = dict(self.metrics)
        return doc

    @property
    def line(self) -> str:
        # sorted keys put "at" first, so sorting lines sorts events by time (cat_sort_uniq)
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @cached_property
    def id(self) -> str:  # cached: the chain and the causal order look ids up many times
        return "sha256:" + hashlib.sha256(self.line.encode("ascii")).hexdigest()


def decode(line: str, where: str = "refs/notes/model") -> Event:
    """Parse one event line; refuse what is not an event, and events of a newer format."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise BadEventError(f"{where}: not an audit event: {line[:60]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("v"), int) or isinstance(doc["v"], bool):
        raise BadEventError(f"{where}: not an audit event (no version 'v'): {line[:60]!r}")
    if doc["v"] > EVENT_VERSION:
        raise UnsupportedVersionError(
            f"{where} holds an audit event of format {doc['v']}; it needs a newer git-model: pip install -U git-model"
        )
    if doc["v"] < MIN_EVENT_VERSION:
        raise BadEventError(f"{where}: unknown audit event format {doc['v']}")

    def text(key: str, required: bool = False) -> Any:
        value = doc.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise BadEventError(f"{where}: audit event {line[:60]!r}: '{key}' must be a string")
        return value

    for key in ("at", "by", "event", "model"):
        text(key, True)
    if not _AT_RE.fullmatch(doc["at"]):
        raise BadEventError(f"{where}: audit event {line[:60]!r}: 'at' is not a UTC time")
    prev = doc.get("prev", [])
    if not isinstance(prev, list) or not all(isinstance(p, str) for p in prev):
        raise BadEventError(f"{where}: audit event {line[:60]!r}: 'prev' must be an array of strings")
    digests = doc.get("digests", {})
    metrics = doc.get("metrics", {})
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        raise BadEventError(f"{where}: audit event {line[:60]!r}: 'digests' must map paths to strings")
    if not isinstance(metrics, dict) or not all(_is_number(v) for v in metrics.values()):
        raise BadEventError(f"{where}: audit event {line[:60]!r}: 'metrics' must map names to numbers")
    # unknown keys of this format version are ignored; the id is still that of the line read
    return _Decoded(
        doc["at"], doc["by"], doc["event"], doc["model"], tuple(prev), text("version"), text("commit"),
        text("pointer"), digests, text("stage"), text("replaced"), metrics, text("reason"), text("tag"),
        raw=line,
    )


@dataclass(frozen=True)
class _Decoded(Event):
    """An event as read: its line (and so its id) is exactly the bytes stored, not a re-encoding."""

    raw: str = ""

    @property
    def line(self) -> str:
        return self.raw


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- who --------------------------------------------------------------------------------
def identity(git: GitRepo) -> tuple[str, str]:
    """(name, email) as `git commit` would record the author; the login and host if unset."""
    name = os.environ.get("GIT_AUTHOR_NAME") or git.config_get("user.name")
    email = os.environ.get("GIT_AUTHOR_EMAIL") or git.config_get("user.email")
    if not name:
        name = getpass.getuser()
    if not email:
        email = f"{getpass.getuser()}@{socket.gethostname()}"
    return name, email


def who(git: GitRepo) -> str:
    name, email = identity(git)
    return f"{name} <{email}>"


# -- reading and writing ---------------------------------------------------------------------
@dataclass
class History:
    """Every event in refs/notes/model, in causal order (parents first, then by time)."""

    events: list[Event]

    def of(self, model: str) -> list[Event]:
        return [e for e in self.events if e.model == model]

    def heads(self, model: str) -> list[str]:
        """Ids of the model's events that no later event names: the next event's `prev`."""
        mine = self.of(model)
        named = {p for e in mine for p in e.prev}
        return sorted(e.id for e in mine if e.id not in named)

    def models(self) -> set[str]:
        return {e.model for e in self.events}


_cache: dict[tuple[str, str], History] = {}


def sync(git: GitRepo) -> None:
    """Fold every fetched remote notes history into refs/notes/model (fast-forward or merge).

    `git fetch` puts a remote's notes in refs/model-remotes/<remote>/notes/model and never
    into refs/notes/model (two clones' histories may have forked); each command that reads
    or writes events folds them in first, so the next `git push` is a fast-forward.
    """
    for name in sorted(git.ref_names("refs/model-remotes/")):
        target = git.ref_target(name)
        if target is None or not name.endswith("/notes/model"):
            continue
        ours = git.ref_target(NOTES_REF)
        if ours is None:
            git.set_ref(NOTES_REF, target)
        elif git.is_ancestor(target, ours):
            continue
        elif git.is_ancestor(ours, target):
            git.set_ref(NOTES_REF, target)
        else:
            git.merge_notes(NOTES_REF, target)


def read(git: GitRepo, use_cache: bool = True) -> History:
    """All events, after folding in fetched remote notes."""
    with git.lock(), git.shared_refs_lock():
        sync(git)
    return _read(git, use_cache)


CACHE_NAME = "model-events.cache"
_CACHE_FORMAT = 1


def _read(git: GitRepo, use_cache: bool = True) -> History:
    """All events. With `use_cache`, from the events cache when it is of the current notes tip."""
    tip = git.ref_target(NOTES_REF)
    if tip is None:
        return History([])
    key = (str(git.git_dir), tip)
    cached = _cache.get(key)
    if cached is not None and use_cache:
        return cached
    history = _load_cache(git, tip) if use_cache else None
    if history is None:
        history = _read_notes(git)
        _save_cache(git, tip, history)
    _cache.clear()
    _cache[key] = history
    return history


def _load_cache(git: GitRepo, tip: str) -> History | None:
    """The events as the last full read left them, in order, if the notes have not moved since.

    Reading 1,000s of events means checking each and ordering them all; the cache (in the
    git dir, never shared) skips both. `audit --verify` never uses it.
    """
    try:
        doc = json.loads((git.git_dir / CACHE_NAME).read_bytes())
        if doc.get("format") != _CACHE_FORMAT or doc.get("notes") != tip:
            return None
        events: list[Event] = []
        for line in doc["lines"]:
            fields = json.loads(line)
            events.append(_Decoded(
                fields["at"], fields["by"], fields["event"], fields["model"], tuple(fields.get("prev", ())),
                fields.get("version"), fields.get("commit"), fields.get("pointer"), fields.get("digests", {}),
                fields.get("stage"), fields.get("replaced"), fields.get("metrics", {}), fields.get("reason"),
                fields.get("tag"), raw=line,
            ))
        return History(events)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no cache, or one from another release: read the notes


def _save_cache(git: GitRepo, tip: str, history: History) -> None:
    from gitmodel.statcache import write_cache_file  # a cache: no fsync (see there)

    doc = {"format": _CACHE_FORMAT, "notes": tip, "lines": [e.line for e in history.events]}
    try:
        write_cache_file(git.git_dir / CACHE_NAME, json.dumps(doc).encode())
    except OSError:
        pass  # a read-only repository: no cache, same answers


def _read_notes(git: GitRepo) -> History:
    events: dict[str, Event] = {}
    for annotated, data in git.notes(NOTES_REF):
        where = f"{NOTES_REF} (note on {annotated[:12]})"
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise BadEventError(f"{where}: not ASCII; audit events are ASCII JSON lines") from None
        for line in text.splitlines():
            if line.strip():
                e = decode(line, where)
                events[e.id] = e  # the same event attached twice is one event
    return History(causal_order(events.values()))


def causal_order(events: Iterable[Event]) -> list[Event]:
    """Each event after the events it names, otherwise by time, then by line (deterministic)."""
    by_id = {e.id: e for e in events}
    waiting: dict[str, int] = {}
    children: dict[str, list[str]] = {}
    for e in by_id.values():
        parents = [p for p in set(e.prev) if p in by_id]
        waiting[e.id] = len(parents)
        for p in parents:
            children.setdefault(p, []).append(e.id)
    ready = [(by_id[i].at, by_id[i].line, i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[Event] = []
    while ready:
        _, _, i = heapq.heappop(ready)
        out.append(by_id[i])
        for c in children.get(i, []):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (by_id[c].at, by_id[c].line, c))
    return out


Recheck = Callable[["History"], Mapping[str, Any]]


def append(git: GitRepo, attach_to: str, event: Event, recheck: Recheck | None = None) -> Event:
    """Write one event (its `prev` filled with the model's heads) into the note on `attach_to`.

    `recheck` is called with the history as it is under the lock, just before the write: it
    raises to refuse the event, or returns fields to set. A decision that depends on earlier
    events (who holds a stage) made before the lock may be stale: another process may have
    appended in between.
    """
    with git.lock(), git.shared_refs_lock():  # worktrees share refs/notes/model
        sync(git)
        history = _read(git)
        if recheck is not None:
            event = replace(event, **recheck(history))
        event = replace(event, prev=tuple(history.heads(event.model)))
        old = git.note(NOTES_REF, attach_to)
        lines = old.decode("ascii", "replace").splitlines() if old else []
        lines = sorted({line for line in lines if line.strip()} | {event.line})
        message = f"git model: {summary(event)}\n\nevent: {event.id}\n"
        git.write_note(NOTES_REF, attach_to, "\n".join(lines) + "\n", identity(git), message)
        if event.event in SIGNED and git.signs():
            git.sign_tip(NOTES_REF, message)
        tip = git.ref_target(NOTES_REF)
        if tip is not None:  # the caches follow our own write without re-reading
            after = History(causal_order(history.events + [event]))
            _cache.clear()
            _cache[(str(git.git_dir), tip)] = after
            _save_cache(git, tip, after)
    return event


def summary(e: Event) -> str:
    """One line: what happened to which version (the notes commit's subject)."""
    out = f"{e.event} {e.model}" + (f" v{e.version}" if e.version else "")
    if e.stage:
        out += f" -> {e.stage}" + (f" (was v{e.replaced})" if e.replaced else "")
    return out


def record(git: GitRepo, kind: str, model: str, attach_to: str, recheck: Recheck | None = None, **fields: Any) -> Event:
    """Append a `kind` event for `model` by the current user, now (`recheck`: see `append`)."""
    assert kind in KINDS, kind
    return append(git, attach_to, Event(at=now(), by=who(git), event=kind, model=model, **fields), recheck)


def record_added(git: GitRepo, model: str, pointer_path: str, digests: Mapping[str, str]) -> Event:
    """The event of `git model add`: on HEAD (the pointer is staged, not yet committed)."""
    attach = git.head_commit() or git.empty_blob()
    return record(git, "added", model, attach, pointer=pointer_path, digests=dict(digests))


# -- verifying ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    model: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.model}: {self.where}: {self.message}"


def verify_chain(history: History) -> list[Problem]:
    """Every `prev` names an event that exists; only a model's first event names none."""
    problems: list[Problem] = []
    ids = {e.id for e in history.events}
    for model in sorted(history.models()):
        mine = history.of(model)
        for i, e in enumerate(mine):
            where = f"{e.event} {('v' + e.version) if e.version else ''} at {e.at}".replace("  ", " ")
            missing = [p for p in e.prev if p not in ids]
            if missing:
                problems.append(Problem(model, where, f"names a previous event {missing[0]} that is not in the "
                                        "history: an event was dropped or rewritten"))
            elif not e.prev and i > 0:
                problems.append(Problem(model, where, "names no previous event but is not the model's first: "
                                        "history before it was dropped or rewritten"))
    return problems


def verify_signatures(git: GitRepo, history: History) -> list[Problem]:
    """Each signed notes commit must verify, and name an event that exists."""
    by_id = {e.id: e for e in history.events}
    problems = []
    for commit, message in git.signed_commits(NOTES_REF):
        named = [line[len("event: "):] for line in message.splitlines() if line.startswith("event: ")]
        event = by_id.get(named[0]) if named else None
        model = event.model if event else "?"
        where = f"{event.event} {('v' + event.version) if event.version else ''} at {event.at}".replace("  ", " ") \
            if event else f"notes commit {commit[:12]}"
        bad = git.verify_commit(commit)
        if bad is not None:
            problems.append(Problem(model, where, f"bad signature: {bad}"))
        elif named and event is None:
            problems.append(Problem(model, where, f"is signed for the event {named[0]}, which is not in the history"))
    return problems


# -- remotes -------------------------------------------------------------------------------------
def configure_remotes(git: GitRepo) -> list[str]:
    """Make plain `git push`/`git fetch` carry model tags and audit notes; return the remotes set up now."""
    configured = []
    for remote in git.remotes():
        fetch = [s.format(remote=remote) for s in FETCH_REFSPECS]
        have_fetch = git.config_values(f"remote.{remote}.fetch")
        have_push = git.config_values(f"remote.{remote}.push")
        if all(s in have_fetch for s in fetch) and all(s in have_push for s in PUSH_REFSPECS):
            continue
        if not have_push:
            # with no push refspec git pushes the current branch (push.default); once one is
            # set it pushes only those, so HEAD keeps the current branch in a plain `git push`
            git.config_add(f"remote.{remote}.push", "HEAD")
        for spec in PUSH_REFSPECS:
            if spec not in have_push:
                git.config_add(f"remote.{remote}.push", spec)
        for spec in fetch:
            if spec not in have_fetch:
                git.config_add(f"remote.{remote}.fetch", spec)
        configured.append(remote)
    return configured


def setup_remotes(git: GitRepo) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Configure every remote (see configure_remotes) and fetch the notes of those set up now.

    A fresh clone has the tags (clone fetches them) but not refs/notes/model, which only the
    new fetch refspec brings: fetching it here makes `git model init` all a teammate runs.
    """
    configured = configure_remotes(git)
    warnings = []
    for remote in configured:
        spec = FETCH_REFSPECS[0].format(remote=remote)
        problem = git.fetch_refspecs(remote, [spec])
        if problem is not None:
            warnings.append(f"could not fetch the audit notes of '{remote}' ({problem}); run 'git fetch {remote}' later")
    return tuple(configured), tuple(warnings)
