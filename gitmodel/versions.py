"""One grammar for a model version (NAME, NAME@vX.Y.Z, NAME@latest, NAME@<stage>, NAME@<commit-ish>, NAME@run/<run>/step-N) and its resolution."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gitmodel import audit
from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError, NotAModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.semver import BadVersionError, Semver, latest
from gitmodel.stages import StageHistory, replay

TAG_PREFIX = "refs/tags/model/"


def tag_name(model: str, version: Semver) -> str:
    """The tag of a version, without refs/tags/: model/<name>/v<version>."""
    return f"model/{model}/v{version}"


@dataclass(frozen=True)
class Spec:
    name: str
    ref: str | None  # None: the working tree

    def __str__(self) -> str:
        return self.name if self.ref is None else f"{self.name}@{self.ref}"


def parse(text: str) -> Spec:
    name, at, ref = text.partition("@")
    if not ptr.NAME_RE.fullmatch(name):
        raise GitModelError(
            f"'{text}' does not name a model version: use NAME, NAME@vX.Y.Z, NAME@latest, NAME@STAGE or NAME@COMMIT"
        )
    if at and not ref:
        raise GitModelError(f"'{text}' names no version after '@': use NAME@vX.Y.Z, NAME@latest, NAME@STAGE or NAME@COMMIT")
    return Spec(name, ref if at else None)


@dataclass(frozen=True)
class VersionTag:
    model: str
    version: Semver
    ref: str  # refs/tags/model/<name>/v<version>
    oid: str  # the tag object (or the commit, for a lightweight tag)


def version_tags(git: GitRepo) -> dict[str, list[VersionTag]]:
    """Model name → its version tags, in semver order; tags not of the form model/<name>/vX.Y.Z are ignored."""
    out: dict[str, list[VersionTag]] = {}
    for ref, oid in git.refs_under(TAG_PREFIX).items():
        name, slash, label = ref[len(TAG_PREFIX):].partition("/")
        if not slash or not label.startswith("v") or not ptr.NAME_RE.fullmatch(name):
            continue
        version = Semver.maybe(label[1:])
        if version is not None:
            out.setdefault(name, []).append(VersionTag(name, version, ref, oid))
    for tags in out.values():
        tags.sort(key=lambda t: t.version.key())
    return out


def latest_tag(tags: list[VersionTag]) -> VersionTag | None:
    best = latest([t.version for t in tags])
    return next((t for t in tags if t.version == best), None) if best else None


@dataclass(frozen=True)
class Card:
    """What a version's tag message says (see docs/versions.md, "The tag message")."""

    commit: str
    pointer_path: str | None
    tagger: str
    time: int
    fields: dict[str, str]
    message: str


def read_card(git: GitRepo, tag: VersionTag) -> Card:
    info = git.read_tag(tag.oid)
    if info is None:  # a lightweight tag made by hand: no card, the commit is all we know
        commit = git.resolve_commit(tag.oid) or tag.oid
        return Card(commit, None, "", git.commit_time(commit), {}, "")
    commit, message, tagger, when = info
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key and key not in fields:
            fields[key] = value.strip()
    return Card(commit, fields.get("pointer"), tagger, when, fields, message)


@dataclass(frozen=True)
class ModelVersion:
    """A resolved NAME[@REF]: where its pointer is, and which version it is if tagged."""

    name: str
    commit: str | None  # None: the working tree
    pointer_path: str
    pointer: ptr.Pointer
    version: Semver | None
    stage: str | None = None

    @property
    def label(self) -> str:
        if self.version is not None:
            return f"{self.name}@v{self.version}"
        if self.commit is not None:
            return f"{self.name}@{self.commit[:12]}"
        return self.name

    def file_paths(self) -> list[tuple[ptr.FileEntry, str]]:
        base = self.pointer_path.rsplit("/", 1)[0] + "/" if "/" in self.pointer_path else ""
        return [(f, base + f.path) for f in self.pointer.files]


def known_models(git: GitRepo, tags: dict[str, list[VersionTag]] | None = None) -> list[str]:
    """Every model name with a version tag, an event, or a pointer in the index."""
    names = set(version_tags(git) if tags is None else tags)
    names |= audit.read(git).models()
    names |= {n for n in index_names(git)}
    return sorted(names)


# The pointer encoding puts `name` on its own line near the top (docs/pointer-format.md), so
# listing models reads that line instead of parsing every pointer: `ls` stays fast with
# hundreds of models.
_NAME_LINE = re.compile(rb'^name = "([A-Za-z0-9][A-Za-z0-9._-]{0,99})"$', re.M)


def index_names(git: GitRepo) -> dict[str, str]:
    """Name → pointer path, for the pointers in Git's index (the name read from the working tree)."""
    out: dict[str, str] = {}
    for p in git.indexed_paths(ptr.SUFFIX):
        try:
            with open(git.abspath(p), "rb") as f:
                head = f.read(1024)
        except OSError:
            continue
        match = _NAME_LINE.search(head)
        if match is not None:
            out.setdefault(match.group(1).decode(), p)
    return out


def resolve(git: GitRepo, text: str) -> ModelVersion:
    """Resolve NAME[@REF]; an unknown name or version is an error that lists what exists."""
    spec = parse(text)
    tags = version_tags(git)
    mine = tags.get(spec.name, [])
    if spec.ref is None:
        paths = index_names(git)
        if spec.name not in paths:
            raise _unknown_model(git, spec.name, tags)
        p = paths[spec.name]
        return ModelVersion(spec.name, None, p, ptr.decode(git.abspath(p).read_bytes(), p), None)
    ref = spec.ref
    if ref == "latest":
        tag = latest_tag(mine)
        if tag is None:
            raise _no_versions(git, spec.name, tags)
        return _from_tag(git, tag)
    if ref.startswith("v") and ref[1:2].isdigit():
        try:
            version = Semver.parse(ref)
        except BadVersionError as exc:
            raise GitModelError(f"{text}: {exc}") from None
        tag = next((t for t in mine if t.version == version), None)
        if tag is None:
            raise GitModelError(f"{spec.name} has no version v{version}; {_listing(git, spec.name, tags)}")
        return _from_tag(git, tag)
    histories = stage_histories(git, spec.name)
    if ref in histories:
        holder = histories[ref].holder
        if holder is None:
            raise GitModelError(f"no version of {spec.name} holds the stage '{ref}' now; {_listing(git, spec.name, tags)}")
        tag = next((t for t in mine if str(t.version) == holder), None)
        if tag is None:
            raise GitModelError(f"{spec.name}@{ref} is v{holder}, but its tag is missing; run 'git fetch' to get it")
        return replace_stage(_from_tag(git, tag), ref)
    commit = run_checkpoint(git, spec.name, ref) if ref.startswith("run/") else git.resolve_commit(ref)
    if commit is None:
        raise GitModelError(f"{spec.name} has no version, stage or commit '{ref}'; {_listing(git, spec.name, tags)}")
    tagged = {read_card(git, t).commit: t for t in mine}
    if commit in tagged:
        return _from_tag(git, tagged[commit])
    return _at_commit(git, spec.name, commit, None, None)


def run_checkpoint(git: GitRepo, name: str, ref: str) -> str:
    """NAME@run/<run>/step-N (or /latest, /best): a training run's checkpoint (gitmodel/train/runs.py)."""
    from gitmodel.train.runs import resolve_run_rev

    return resolve_run_rev(git, name, ref)


def replace_stage(mv: ModelVersion, stage: str) -> ModelVersion:
    return ModelVersion(mv.name, mv.commit, mv.pointer_path, mv.pointer, mv.version, stage)


def stage_histories(git: GitRepo, model: str) -> dict[str, StageHistory]:
    return replay(audit.read(git).of(model))


def _from_tag(git: GitRepo, tag: VersionTag) -> ModelVersion:
    card = read_card(git, tag)
    return _at_commit(git, tag.model, card.commit, card.pointer_path, tag.version)


def _at_commit(git: GitRepo, name: str, commit: str, hint: str | None, version: Semver | None) -> ModelVersion:
    found = find_pointer(git, commit, name, hint)
    if found is None:
        raise NotAModelError(f"commit {commit[:12]} has no pointer for the model '{name}'")
    path, pointer = found
    return ModelVersion(name, commit, path, pointer, version)


def find_pointer(git: GitRepo, commit: str, name: str, hint: str | None = None) -> tuple[str, ptr.Pointer] | None:
    """The pointer of model `name` in a commit: the hinted path first, then where the index has it, then any."""
    seen: set[str] = set()

    def candidates() -> Iterator[str]:  # lazily: the hint is almost always right
        if hint:
            yield hint
        indexed = index_names(git).get(name)
        if indexed:
            yield indexed
        yield from git.paths_in_commit(commit, ptr.SUFFIX)

    for path in candidates():
        if path in seen:
            continue
        seen.add(path)
        data = git.blob_at(commit, path)
        if data is None:
            continue
        try:
            pointer = ptr.decode(data, path)
        except GitModelError:
            continue
        if pointer.name == name:
            return path, pointer
    return None


def _listing(git: GitRepo, name: str, tags: dict[str, list[VersionTag]]) -> str:
    versions = [f"v{t.version}" for t in tags.get(name, [])]
    stages = sorted(s for s, h in stage_histories(git, name).items() if h.holder)
    shown = ", ".join(versions[-10:]) if versions else "none"
    if len(versions) > 10:
        shown = f"... {shown} ({len(versions)} in all)"
    out = f"versions: {shown}"
    if stages:
        out += f"; stages: {', '.join(stages)}"
    return out


def _no_versions(git: GitRepo, name: str, tags: dict[str, list[VersionTag]]) -> GitModelError:
    if name not in known_models(git, tags):
        return _unknown_model(git, name, tags)
    return GitModelError(f"{name} has no versions yet; tag one with 'git model tag {name} 1.0.0'")


def _unknown_model(git: GitRepo, name: str, tags: dict[str, list[VersionTag]]) -> NotAModelError:
    models = known_models(git, tags)
    shown = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
    return NotAModelError(f"no model is named '{name}'; models: {shown or 'none (add one with git model add PATH)'}")
