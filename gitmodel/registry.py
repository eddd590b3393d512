"""The registry: tag versions, move stages, deprecate, annotate; and read it back (log, show, ls)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gitmodel import audit
from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError, NotAModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.manifest import Manifest
from gitmodel.semver import FIRST, Semver
from gitmodel.stages import StageHistory, check_stage_name, replay, stages_of
from gitmodel.store.objects import ChunkStore, ManifestId
from gitmodel.versions import (
    index_names,
    ModelVersion,
    VersionTag,
    run_checkpoint,
    find_pointer,
    latest_tag,
    read_card,
    resolve,
    tag_name,
    version_tags,
)


# -- what changed: the --auto bump ------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    bump: str | None  # major | minor | patch | None (nothing changed)
    reason: str


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def classify(old: ptr.Pointer, new: ptr.Pointer) -> Change:
    """major: a tensor added, removed or renamed, or a dtype or shape changed; minor: weights
    changed; patch: only metadata changed (pointer metadata, or file bytes outside the tensors)."""
    old_t = {n: t for f in old.files for n, t in f.tensors.items()}
    new_t = {n: t for f in new.files for n, t in f.tensors.items()}
    added = sorted(set(new_t) - set(old_t))
    removed = sorted(set(old_t) - set(new_t))
    if added or removed:
        parts = ([f"added {_names(added)}"] if added else []) + ([f"removed {_names(removed)}"] if removed else [])
        return Change("major", "architecture changed: tensors " + "; ".join(parts))
    reshaped = sorted(n for n in new_t if (new_t[n].dtype, new_t[n].shape) != (old_t[n].dtype, old_t[n].shape))
    if reshaped:
        n = reshaped[0]
        detail = f"{n} {old_t[n].dtype}{list(old_t[n].shape)} -> {new_t[n].dtype}{list(new_t[n].shape)}"
        more = f" and {len(reshaped) - 1} more" if len(reshaped) > 1 else ""
        return Change("major", f"architecture changed: dtype or shape of {detail}{more}")
    moved = sorted(n for n in new_t if new_t[n].digest != old_t[n].digest)
    old_f = {f.path: f for f in old.files}
    new_f = {f.path: f for f in new.files}
    # a file without a tensor table (opaque bytes, a zip member list) is judged as a whole
    opaque = sorted(
        p for p in set(old_f) | set(new_f)
        if not (old_f.get(p) and old_f[p].tensors) and not (new_f.get(p) and new_f[p].tensors)
        and (p not in old_f or p not in new_f or old_f[p].digest != new_f[p].digest)
    )
    if moved or opaque:
        what = [f"{len(moved)} tensor(s) ({_names(moved)})"] if moved else []
        what += [f"file(s) {_names(opaque)}"] if opaque else []
        return Change("minor", "weights changed: " + "; ".join(what))
    meta_files = sorted(p for p in new_f if p in old_f and old_f[p].digest != new_f[p].digest)
    if meta_files or set(old_f) != set(new_f) or old.metadata != new.metadata:
        where = (["pointer metadata"] if old.metadata != new.metadata else []) + [f"header of {p}" for p in meta_files]
        return Change("patch", "only metadata changed: " + (_names(where) or "file list"))
    return Change(None, "nothing changed")


# -- tag ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TagResult:
    model: str
    version: str
    tag: str
    commit: str
    pointer: str
    parent: str | None
    bump: str | None
    reason: str
    created: bool  # False for --dry-run


def metrics_of(pointer: ptr.Pointer) -> dict[str, float]:
    """Numeric values of the pointer's metadata.metrics table (absent or other values: ignored)."""
    table = pointer.metadata.get("metrics")
    if not isinstance(table, Mapping):
        return {}
    return {str(k): v for k, v in sorted(table.items()) if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _format_metrics(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in sorted(metrics.items()))


def tag(
    git: GitRepo,
    store: ChunkStore,
    name: str,
    version: str | None = None,
    bump: str | None = None,
    rev: str = "HEAD",
    message: str | None = None,
    dry_run: bool = False,
) -> TagResult:
    """Create the annotated tag model/<name>/vX.Y.Z on `rev`, with a card as its message."""
    if (version is None) == (bump is None):
        raise GitModelError("give either a VERSION or one of --major, --minor, --patch, --auto")
    if not ptr.NAME_RE.fullmatch(name):
        raise GitModelError(f"'{name}' is not a valid model name")
    commit = run_checkpoint(git, name, rev) if rev.startswith("run/") else git.resolve_commit(rev)
    if commit is None:
        raise GitModelError(f"'{rev}' is not a commit; tag a commit that holds the model's pointer")
    found = find_pointer(git, commit, name)
    if found is None:
        raise NotAModelError(
            f"commit {commit[:12]} ({rev}) has no pointer for the model '{name}'; commit it first, or pass --rev"
        )
    pointer_path, pointer = found
    tags = version_tags(git).get(name, [])
    wanted = Semver.parse(version) if version is not None else None
    unfinished = _unrecorded_tag(git, name, tags, commit)
    if unfinished is not None and not dry_run and wanted in (None, unfinished.version):
        # a `tag` killed between its tag and its event: finish that one (no second version)
        audit.record(git, "tagged", name, commit, version=str(unfinished.version), commit=commit,
                     pointer=pointer_path, digests=_digests(pointer_path, pointer), metrics=metrics_of(pointer),
                     reason=message, tag=unfinished.oid)
        below = latest_tag([t for t in tags if t.version.key() < unfinished.version.key()])
        return TagResult(name, str(unfinished.version), tag_name(name, unfinished.version), commit, pointer_path,
                         f"v{below.version}" if below else None, None, "completed an interrupted tag", True)
    previous = latest_tag(tags)
    change = Change(None, "")
    if version is not None:
        target = Semver.parse(version)
    elif bump == "auto":
        if previous is None:
            target, change = FIRST["major"], Change("major", "first version")
        else:
            old = resolve(git, f"{name}@v{previous.version}")
            change = classify(old.pointer, pointer)
            if change.bump is None:
                raise GitModelError(
                    f"{name} at {rev} is identical to v{previous.version}; there is nothing to bump"
                )
            target = previous.version.bump(change.bump)
    else:
        assert bump is not None
        target = previous.version.bump(bump) if previous else FIRST[bump]
        change = Change(bump, f"--{bump}")
    if any(t.version == target for t in tags):
        raise GitModelError(f"{name} v{target} exists already (tag {tag_name(name, target)}); choose another version")
    missing = _missing_from_store(store, pointer)
    if missing:
        raise GitModelError(
            f"the weights of {name} at {commit[:12]} are not in the store ({missing}); "
            "run 'git model add' on them, or get the store from the clone that added them"
        )
    parent = f"v{previous.version}" if previous else None
    result = TagResult(name, str(target), tag_name(name, target), commit, pointer_path, parent, change.bump,
                       change.reason, not dry_run)
    if dry_run:
        return result
    card = _card(name, target, commit, pointer_path, pointer, parent, change, message)
    git.create_tag(result.tag, commit, card, audit.identity(git))
    audit.record(git, "tagged", name, commit, version=str(target), commit=commit, pointer=pointer_path,
                 digests=_digests(pointer_path, pointer), metrics=metrics_of(pointer), reason=message,
                 tag=git.ref_target("refs/tags/" + result.tag))
    return result


def _unrecorded_tag(git: GitRepo, name: str, tags: list[VersionTag], commit: str) -> VersionTag | None:
    """The highest version tag on `commit` that git model made (its message is our card for that
    version and commit) but whose `tagged` event is missing: a `tag` killed between the two."""
    recorded = {e.version for e in audit.read(git).events if e.model == name and e.event == "tagged"}
    for t in reversed(tags):  # semver order: the highest first
        if str(t.version) in recorded:
            continue
        info = git.read_tag(t.oid)
        if info is not None and info[0] == commit and f"\nmodel: {name}\nversion: {t.version}\ncommit: {commit}\n" in info[1]:
            return t
    return None


def _digests(pointer_path: str, pointer: ptr.Pointer) -> dict[str, str]:
    base = pointer_path.rsplit("/", 1)[0] + "/" if "/" in pointer_path else ""
    return {base + f.path: f.digest for f in pointer.files}


def _missing_from_store(store: ChunkStore, pointer: ptr.Pointer) -> str | None:
    """A short description of the first object of the pointer the store lacks, or None."""
    for f in pointer.files:
        if not store.has_manifest(ManifestId(f.manifest)):
            return f"manifest {f.manifest} of {f.path}"
        manifest = Manifest.decode(store.get_manifest(ManifestId(f.manifest)), f.manifest)
        for cid, _ in manifest.chunks:
            if not store.has_chunk(cid):
                return f"a chunk of {f.path}"
    return None


def _card(name: str, version: Semver, commit: str, pointer_path: str, pointer: ptr.Pointer,
          parent: str | None, change: Change, message: str | None) -> str:
    lines = [f"{name} v{version}", ""]
    if message:
        lines += [message.strip(), ""]
    lines += [
        f"model: {name}",
        f"version: {version}",
        f"commit: {commit}",
        f"pointer: {pointer_path}",
        f"size: {pointer.size}",
        f"parent: {parent or 'none'}",
    ]
    if change.bump:
        lines.append(f"bump: {change.bump} ({change.reason})")
    metrics = metrics_of(pointer)
    if metrics:
        lines.append(f"metrics: {_format_metrics(metrics)}")
    for f in sorted(pointer.files, key=lambda f: f.path):
        lines.append(f"file: {f.digest} {f.size} {f.path}")
    return "\n".join(lines) + "\n"


# -- stages ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageChange:
    model: str
    stage: str
    version: str
    replaced: str | None


def _tagged(git: GitRepo, spec: str, what: str) -> ModelVersion:
    mv = resolve(git, spec)
    if mv.version is None:
        raise GitModelError(
            f"{mv.label} is not a tagged version; tag it first ('git model tag {mv.name} --auto') and {what} that"
        )
    return mv


def promote(git: GitRepo, spec: str, stage: str, reason: str | None = None) -> StageChange:
    check_stage_name(stage)
    mv = _tagged(git, spec, "promote")
    version = str(mv.version)
    history = audit.read(git).of(mv.name)
    _holder_to_replace(mv, stage, history)
    _check_gates(git, mv, stage, history)
    assert mv.commit is not None
    event = audit.record(git, "promoted", mv.name, mv.commit, version=version, commit=mv.commit, stage=stage,
                         reason=reason, pointer=mv.pointer_path, digests=_digests(mv.pointer_path, mv.pointer),
                         recheck=lambda now: {"replaced": _holder_to_replace(mv, stage, now.of(mv.name))})
    return StageChange(mv.name, stage, version, event.replaced)


def _holder_to_replace(mv: ModelVersion, stage: str, history: list[audit.Event]) -> str | None:
    """The version `mv` takes `stage` from; refused if `mv` holds it or is deprecated.

    Asked again under the notes lock (another process may have promoted in between), so two
    promotes racing for a stage end as two whole changes, each naming what it replaced.
    """
    version = str(mv.version)
    dep = _deprecation(history, version)
    if dep is not None:
        raise GitModelError(f"{mv.label} is deprecated ({dep.reason or 'no reason given'}); promote another version")
    current = replay(history).get(stage)
    holder = current.holder if current else None
    if holder == version:
        raise GitModelError(f"{mv.label} already holds the stage '{stage}'")
    return holder


def _check_gates(git: GitRepo, mv: ModelVersion, stage: str, history: list[audit.Event]) -> None:
    """Refuse a version that misses the stage's gates of .gitmodel.toml (docs/metadata.md).

    The metrics judged are the pointer's, updated by later `annotate` events: an evaluation
    recorded after the commit counts, as it does in `log` and `show`.
    """
    from gitmodel.metadata import deep_merge
    from gitmodel.schema import gate_problems, load_schema

    annotated: dict[str, float] = {}
    for e in history:
        if e.event == "annotated" and e.version == str(mv.version):
            annotated.update(e.metrics)
    metadata = deep_merge(dict(mv.pointer.metadata), {"metrics": annotated}) if annotated else mv.pointer.metadata
    problems = gate_problems(load_schema(git), mv.name, stage, metadata)
    if problems:
        raise GitModelError(f"{mv.label} cannot be promoted to '{stage}': " + "; ".join(problems))


def rollback(git: GitRepo, name: str, stage: str, reason: str | None = None) -> StageChange:
    """Hand `stage` back to the version that held it before the current holder."""
    check_stage_name(stage)
    history = audit.read(git).of(name)
    tags = version_tags(git)
    if not history and name not in tags:
        resolve(git, name)  # raises the "no model is named" error, listing the models
    h = replay(history).get(stage)
    if h is None or h.holder is None:
        raise GitModelError(f"no version of {name} holds the stage '{stage}'; nothing to roll back")
    if len(h.stack) < 2:
        raise GitModelError(f"{name}@v{h.holder} is the first version to hold '{stage}'; there is no earlier one to roll back to")
    current, restored = h.stack[-1], h.stack[-2]
    mv = resolve(git, f"{name}@v{restored}")
    assert mv.commit is not None

    def unchanged(now: audit.History) -> dict[str, Any]:
        """Under the notes lock: the stage still stands as read (else another command moved it meanwhile)."""
        again = replay(now.of(name)).get(stage)
        if again is None or again.stack[-2:] != [restored, current]:
            raise GitModelError(f"the stage '{stage}' of {name} changed while rolling back (another command "
                                f"promoted or rolled back meanwhile); see 'git model stages {name}' and run it again")
        return {}

    audit.record(git, "rolled-back", name, mv.commit, version=restored, commit=mv.commit, stage=stage,
                 replaced=current, reason=reason, pointer=mv.pointer_path, digests=_digests(mv.pointer_path, mv.pointer),
                 recheck=unchanged)
    return StageChange(name, stage, restored, current)


def _deprecation(events: list[audit.Event], version: str) -> audit.Event | None:
    return next((e for e in reversed(events) if e.event == "deprecated" and e.version == version), None)


def deprecation(git: GitRepo, name: str, version: str) -> audit.Event | None:
    return _deprecation(audit.read(git).of(name), version)


def deprecate(git: GitRepo, spec: str, reason: str | None = None) -> ModelVersion:
    mv = _tagged(git, spec, "deprecate")
    assert mv.commit is not None
    if deprecation(git, mv.name, str(mv.version)) is not None:
        raise GitModelError(f"{mv.label} is deprecated already")
    audit.record(git, "deprecated", mv.name, mv.commit, version=str(mv.version), commit=mv.commit, reason=reason,
                 pointer=mv.pointer_path)
    return mv


def annotate(git: GitRepo, spec: str, metrics: Mapping[str, float], reason: str | None = None) -> ModelVersion:
    if not metrics and not reason:
        raise GitModelError("nothing to annotate: give --metric NAME=VALUE or -m MESSAGE")
    mv = _tagged(git, spec, "annotate")
    assert mv.commit is not None
    audit.record(git, "annotated", mv.name, mv.commit, version=str(mv.version), commit=mv.commit,
                 metrics=dict(metrics), reason=reason, pointer=mv.pointer_path)
    return mv


def parse_metric(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not sep or not key or number != number or number in (float("inf"), float("-inf")):
        raise GitModelError(f"'{text}' is not a metric: use NAME=NUMBER, such as f1=0.87")
    return key, int(number) if value.strip().lstrip("+-").isdigit() else number


@dataclass(frozen=True)
class StageState:
    stage: str
    version: str | None
    since: str | None  # the time of the event that gave it this holder
    history: list[dict[str, Any]]


def stages(git: GitRepo, name: str, at: datetime | None = None) -> list[StageState]:
    """Each stage of the model with its holder now, or at the time `at`."""
    history = audit.read(git).of(name)
    if not history and name not in version_tags(git):
        resolve(git, name)  # the "no model is named" error
    out = []
    for stage, h in sorted(replay(history).items()):
        changes = [c for c in h.changes if at is None or audit.event_time(c.at) <= at]
        holder = h.holder if at is None else h.holder_at(at)
        since = changes[-1].at if changes and holder is not None else None
        out.append(StageState(stage, holder, since, [_change_dict(c) for c in h.changes]))
    return out


def _change_dict(e: audit.Event) -> dict[str, Any]:
    return {"at": e.at, "by": e.by, "event": e.event, "version": e.version, "replaced": e.replaced, "reason": e.reason}


# -- reading: log, show, ls -------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    commit: str
    date: str
    author: str
    stages: list[str]
    metrics: dict[str, float]
    deprecated: str | None  # the reason, or "" when none was given; None if not deprecated
    size: int | None


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version_info(git: GitRepo, t: VersionTag, events: list[audit.Event], histories: dict[str, StageHistory]) -> VersionInfo:
    card = read_card(git, t)
    version = str(t.version)
    metrics: dict[str, float] = {}
    for item in card.fields.get("metrics", "").split():
        key, _, value = item.partition("=")
        try:
            metrics[key] = float(value)
        except ValueError:
            continue
    dep = None
    for e in events:  # the version's own events (log passes them grouped)
        if e.version != version:
            continue
        if e.event == "annotated":
            metrics.update(e.metrics)  # later evaluations override earlier ones
        elif e.event == "deprecated":
            dep = e.reason or ""
    size = card.fields.get("size")
    return VersionInfo(t.model, version, card.commit, _iso(card.time), card.tagger, stages_of(histories, version),
                       dict(sorted(metrics.items())), dep, int(size) if size and size.isdigit() else None)


def log(git: GitRepo, name: str) -> list[VersionInfo]:
    """Every version of the model, newest (highest) first."""
    tags = version_tags(git)
    events = audit.read(git).of(name)
    if name not in tags and not events:
        resolve(git, name)  # the "no model is named" error
    histories = replay(events)
    by_version: dict[str | None, list[audit.Event]] = {}
    for e in events:
        by_version.setdefault(e.version, []).append(e)
    return [_version_info(git, t, by_version.get(str(t.version), []), histories) for t in reversed(tags.get(name, []))]


@dataclass(frozen=True)
class ModelSummary:
    model: str
    latest: str | None
    versions: int
    stages: dict[str, str]
    size: int | None
    pointer: str | None


def ls(git: GitRepo) -> list[ModelSummary]:
    """Every model: with a version tag, an audit event, or a pointer in the index."""
    tags = version_tags(git)
    history = audit.read(git)
    index = index_names(git)
    by_model: dict[str, list[audit.Event]] = {}
    for e in history.events:
        by_model.setdefault(e.model, []).append(e)
    out = []
    for name in sorted(set(tags) | set(by_model) | set(index)):
        mine = tags.get(name, [])
        best = latest_tag(mine)
        size: int | None = None
        if best is not None:
            raw = read_card(git, best).fields.get("size", "")
            size = int(raw) if raw.isdigit() else None
        holders = {s: h.holder for s, h in replay(by_model.get(name, [])).items() if h.holder}
        out.append(ModelSummary(name, str(best.version) if best else None, len(mine), dict(sorted(holders.items())),
                                size, index.get(name)))
    return out


@dataclass(frozen=True)
class VersionCard:
    """Everything `show` prints about one version."""

    model: str
    version: str | None
    commit: str | None
    pointer_path: str
    size: int
    files: list[dict[str, Any]]
    metadata: dict[str, Any]
    parent: str | None
    stages: list[str]
    metrics: dict[str, float]
    deprecated: str | None
    tagger: str | None
    date: str | None
    events: list[dict[str, Any]] = field(default_factory=list)


def show(git: GitRepo, spec: str) -> VersionCard:
    mv = resolve(git, spec)
    events = audit.read(git).of(mv.name)
    histories = replay(events)
    files = [{"path": rel, "size": f.size, "digest": f.digest, "format": f.format,
              "tensors": len(f.tensors)} for f, rel in mv.file_paths()]
    metrics = metrics_of(mv.pointer)
    parent = tagger = date = dep = None
    mine: list[audit.Event] = []
    stage_list: list[str] = []
    if mv.version is not None:
        t = next(t for t in version_tags(git)[mv.name] if t.version == mv.version)
        info = _version_info(git, t, events, histories)
        card = read_card(git, t)
        parent = card.fields.get("parent")
        parent = None if parent in (None, "none") else parent
        metrics, dep, stage_list = info.metrics, info.deprecated, info.stages
        tagger, date = info.author, info.date
        mine = [e for e in events if e.version == str(mv.version)]
    elif mv.commit is not None:
        mine = [e for e in events if e.commit == mv.commit]
    else:
        mine = [e for e in events if e.event == "added" and e.digests == _digests(mv.pointer_path, mv.pointer)]
    return VersionCard(mv.name, str(mv.version) if mv.version else None, mv.commit, mv.pointer_path, mv.pointer.size,
                files, dict(mv.pointer.metadata), parent, stage_list, metrics, dep, tagger, date,
                [e.as_dict() for e in mine])


# -- audit ------------------------------------------------------------------------------------------
def audit_events(git: GitRepo, name: str | None = None, since: datetime | None = None) -> list[audit.Event]:
    """Events in causal order (time order unless clocks disagree), of one model or all."""
    history = audit.read(git)
    if name is not None and name not in history.models() and name not in version_tags(git):
        resolve(git, name)  # the "no model is named" error
    events = history.of(name) if name is not None else history.events
    return [e for e in events if since is None or audit.event_time(e.at) >= since]


def verify(git: GitRepo, name: str | None = None) -> list[audit.Problem]:
    """What is wrong with the history: a broken chain, a version tag without its event, a bad signature."""
    history = audit.read(git, use_cache=False)  # every event from the notes themselves
    problems = [p for p in audit.verify_chain(history) + audit.verify_signatures(git, history)
                if name is None or p.model in (name, "?")]
    tagged = {(e.model, e.version) for e in history.events if e.event == "tagged"}
    for model, tags in sorted(version_tags(git).items()):
        if name is not None and model != name:
            continue
        for t in tags:
            label = t.ref[len("refs/tags/"):]
            if (model, str(t.version)) not in tagged:
                problems.append(audit.Problem(model, label, "has no 'tagged' event: the tag was made outside "
                                              "git model, or its event was dropped"))
            info = git.read_tag(t.oid)
            if info is not None and "-----BEGIN" in info[1]:
                bad = git.verify_tag(label)
                if bad is not None:
                    problems.append(audit.Problem(model, label, f"bad signature: {bad}"))
    return problems
