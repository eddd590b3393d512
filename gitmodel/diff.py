"""The semantic diff of model versions, as data: tensors, metadata, metrics and the version bump (docs/review.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.goals import Goals, load_goals
from gitmodel.pointer_summary import plain, tensor_nbytes

WORKTREE = "working tree"


@dataclass(frozen=True)
class TensorChange:
    """One tensor that differs: `added`, `removed`, `changed` (values) or `retyped` (dtype or shape)."""

    name: str
    change: str
    file: str  # the file that holds it (the new one, or the old one when removed)
    old_dtype: str | None
    old_shape: tuple[int, ...] | None
    new_dtype: str | None
    new_shape: tuple[int, ...] | None
    bytes: int  # its size: new side, or old side when removed


@dataclass(frozen=True)
class ValueChange:
    """A metadata key or a file whose value differs; None stands for absent on that side."""

    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class MetricDelta:
    name: str
    old: float | None
    new: float | None
    delta: float | None
    goal: str | None  # max | min | None (unknown)
    verdict: str | None  # better | worse | same | None (unknown goal, or on one side only)


@dataclass(frozen=True)
class ModelDiff:
    name: str
    old_name: str | None  # set when the model was renamed
    status: str  # added | removed | modified | renamed | unchanged
    old_pointer: str | None
    new_pointer: str | None
    tensors: tuple[TensorChange, ...]
    tensors_changed: int
    tensors_total: int
    bytes_changed: int
    bytes_total: int
    files: tuple[ValueChange, ...]  # files whose digest differs (key: path; values: blake3 digests)
    metadata: tuple[ValueChange, ...]
    metrics: tuple[MetricDelta, ...]
    bump: str | None  # major | minor | patch | None: what `git model tag --auto` would do
    reason: str
    old: ptr.Pointer | None = field(default=None, repr=False, compare=False)
    new: ptr.Pointer | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Endpoint:
    """One side of a diff: a commit, a version or the working tree, with the pointers it holds."""

    label: str
    commit: str | None  # None: the working tree (or nothing, for the empty side)
    models: dict[str, tuple[str, ptr.Pointer, dict[str, float]]]  # name → (pointer path, pointer, metrics)
    version_of: str | None = None  # the model name, when the endpoint is one model's version


@dataclass(frozen=True)
class Diff:
    old: str
    new: str
    models: tuple[ModelDiff, ...] = field(default_factory=tuple)


# -- endpoints --------------------------------------------------------------------------------
def _metrics(pointer: ptr.Pointer) -> dict[str, float]:
    from gitmodel.registry import metrics_of

    return dict(metrics_of(pointer))


def commit_endpoint(git: GitRepo, commit: str, label: str) -> Endpoint:
    models: dict[str, tuple[str, ptr.Pointer, dict[str, float]]] = {}
    for path in git.paths_in_commit(commit, ptr.SUFFIX):
        data = git.blob_at(commit, path)
        if data is None:
            continue
        pointer = ptr.decode(data, path)
        models.setdefault(pointer.name, (path, pointer, _metrics(pointer)))
    return Endpoint(label, commit, models)


def worktree_endpoint(git: GitRepo) -> Endpoint:
    """The pointers of the working tree: those in Git's index and those not yet added to it."""
    models: dict[str, tuple[str, ptr.Pointer, dict[str, float]]] = {}
    paths = sorted(set(git.indexed_paths(ptr.SUFFIX)) | set(git.untracked_paths(ptr.SUFFIX)))
    for path in paths:
        try:
            data = git.abspath(path).read_bytes()
        except FileNotFoundError:
            continue  # deleted in the working tree: the model is removed
        pointer = ptr.decode(data, path)
        models.setdefault(pointer.name, (path, pointer, _metrics(pointer)))
    return Endpoint(WORKTREE, None, models)


def version_endpoint(git: GitRepo, spec: str) -> Endpoint:
    """NAME@REF (or NAME, the working tree) as one model's side; a tagged version's metrics include its annotations."""
    from gitmodel import audit
    from gitmodel.versions import resolve

    mv = resolve(git, spec)
    metrics = _metrics(mv.pointer)
    if mv.version is not None:
        for event in audit.read(git).of(mv.name):
            if event.event == "annotated" and event.version == str(mv.version):
                metrics.update(event.metrics)  # later evaluations override earlier ones
    label = mv.label if mv.commit is not None else f"{mv.name} ({WORKTREE})"
    return Endpoint(label, mv.commit, {mv.name: (mv.pointer_path, mv.pointer, dict(sorted(metrics.items())))}, mv.name)


def _is_version(git: GitRepo, text: str) -> bool:
    name, at, ref = text.partition("@")
    if not at:
        return False
    return bool(ptr.NAME_RE.fullmatch(name)) and bool(ref) and not ref.startswith("{") and git.resolve_commit(text) is None


def _commit(git: GitRepo, text: str) -> str:
    commit = git.resolve_commit(text)
    if commit is None:
        raise GitModelError(
            f"'{text}' is neither a commit nor a model version; give a commit (HEAD~1, main), "
            "a range (main...HEAD) or NAME@VERSION (sentiment@v1.2.0)"
        )
    return commit


def _endpoint(git: GitRepo, text: str) -> Endpoint:
    if _is_version(git, text):
        return version_endpoint(git, text)
    return commit_endpoint(git, _commit(git, text), text)


def _head_endpoint(git: GitRepo) -> Endpoint:
    head = git.head_commit()
    return commit_endpoint(git, head, "HEAD") if head is not None else Endpoint("HEAD", None, {})


def endpoints(git: GitRepo, a: str | None = None, b: str | None = None) -> tuple[Endpoint, Endpoint]:
    """What `git model diff [A [B]]` compares; see docs/review.md, "What is compared"."""
    if a is None:
        return _head_endpoint(git), worktree_endpoint(git)
    if b is None and ".." in a and not _is_version(git, a):
        three = "..." in a
        left, right = a.split("..." if three else "..", 1)
        old_c, new_c = _commit(git, left or "HEAD"), _commit(git, right or "HEAD")
        if three:
            base = git.review_merge_base(old_c, new_c)
            if base is None:
                raise GitModelError(f"'{left}' and '{right}' have no common ancestor; compare them with '{left}..{right}'")
            return commit_endpoint(git, base, f"{left or 'HEAD'}...{right or 'HEAD'} (merge base)"), \
                commit_endpoint(git, new_c, right or "HEAD")
        return commit_endpoint(git, old_c, left or "HEAD"), commit_endpoint(git, new_c, right or "HEAD")
    if b is None:
        if _is_version(git, a):
            old = version_endpoint(git, a)
            assert old.version_of is not None
            return old, version_endpoint(git, old.version_of)
        if git.resolve_commit(a) is None and ptr.NAME_RE.fullmatch(a):
            from gitmodel.versions import known_models

            if a in known_models(git):  # a model name, not a branch: its HEAD version against the working tree
                return _restrict(_head_endpoint(git), a), version_endpoint(git, a)
        return commit_endpoint(git, _commit(git, a), a), worktree_endpoint(git)
    return _endpoint(git, a), _endpoint(git, b)


def _restrict(side: Endpoint, name: str) -> Endpoint:
    models = {name: side.models[name]} if name in side.models else {}
    return Endpoint(side.label, side.commit, models, name)


# -- comparing --------------------------------------------------------------------------------
def diff(git: GitRepo, a: str | None = None, b: str | None = None, goals: Goals | None = None) -> Diff:
    """The semantic diff of `git model diff [A [B]]`: one ModelDiff per model that differs."""
    old, new = endpoints(git, a, b)
    return diff_endpoints(old, new, goals if goals is not None else load_goals(git))


def diff_endpoints(old: Endpoint, new: Endpoint, goals: Goals) -> Diff:
    one_model = old.version_of is not None or new.version_of is not None
    if old.version_of and new.version_of is None:
        new = _restrict(new, old.version_of)
    elif new.version_of and old.version_of is None:
        old = _restrict(old, new.version_of)
    pairs: list[tuple[str | None, str | None]] = []
    if one_model and len(old.models) == 1 and len(new.models) == 1:
        pairs.append((next(iter(old.models)), next(iter(new.models))))
    else:
        left = set(old.models) - set(new.models)
        right = set(new.models) - set(old.models)
        pairs += [(n, n) for n in sorted(set(old.models) & set(new.models))]
        by_path = {new.models[n][0]: n for n in right}
        for n in sorted(left):  # same pointer path, another name: the model was renamed
            renamed = by_path.get(old.models[n][0])
            if renamed is not None:
                pairs.append((n, renamed))
                left.discard(n)
                right.discard(renamed)
        pairs += [(n, None) for n in sorted(left)] + [(None, n) for n in sorted(right)]
    out = []
    for old_name, new_name in pairs:
        md = compare_models(old.models[old_name] if old_name else None, new.models[new_name] if new_name else None, goals)
        if md.status != "unchanged" or one_model:
            out.append(md)
    out.sort(key=lambda m: m.name)
    return Diff(old.label, new.label, tuple(out))


def compare_models(
    old: tuple[str, ptr.Pointer, dict[str, float]] | None,
    new: tuple[str, ptr.Pointer, dict[str, float]] | None,
    goals: Goals,
) -> ModelDiff:
    """Everything that differs between two pointers of a model (either may be absent)."""
    from gitmodel.registry import classify

    old_p = old[1] if old else None
    new_p = new[1] if new else None
    old_t = _tensors(old_p)
    new_t = _tensors(new_p)
    changes: list[TensorChange] = []
    for name in sorted(set(old_t) | set(new_t)):
        o, n = old_t.get(name), new_t.get(name)
        if o is None and n is not None:
            changes.append(TensorChange(name, "added", n[0], None, None, n[1].dtype, n[1].shape,
                                        tensor_nbytes(n[1].dtype, n[1].shape)))
        elif n is None and o is not None:
            changes.append(TensorChange(name, "removed", o[0], o[1].dtype, o[1].shape, None, None,
                                        tensor_nbytes(o[1].dtype, o[1].shape)))
        elif o is not None and n is not None and o[1] != n[1]:
            kind = "changed" if (o[1].dtype, o[1].shape) == (n[1].dtype, n[1].shape) else "retyped"
            changes.append(TensorChange(name, kind, n[0], o[1].dtype, o[1].shape, n[1].dtype, n[1].shape,
                                        tensor_nbytes(n[1].dtype, n[1].shape)))
    totals = new_t if new_p is not None else old_t
    bytes_total = sum(tensor_nbytes(t.dtype, t.shape) for _, t in totals.values())
    counted = [c for c in changes if c.change != "removed" or new_p is None]
    files = _file_changes(old_p, new_p)
    metadata = _metadata_changes(old_p, new_p, old[2] if old else {}, new[2] if new else {})
    metrics = _metric_deltas(old[2] if old else {}, new[2] if new else {}, goals)
    if old_p is not None and new_p is not None:
        change = classify(old_p, new_p)
        bump, reason = change.bump, change.reason
        renamed = old_p.name != new_p.name
        if renamed:
            status = "renamed"
        elif bump is None and not metrics and not metadata:
            status = "unchanged"
        else:
            status = "modified"
        if renamed and bump is None:
            bump, reason = "patch", "only metadata changed: the model's name"
    else:
        bump, reason = None, "new model" if old_p is None else "model removed"
        status = "added" if old_p is None else "removed"
    either = new_p if new_p is not None else old_p
    name = either.name if either is not None else ""
    return ModelDiff(
        name=name,
        old_name=old_p.name if old_p is not None and new_p is not None and old_p.name != new_p.name else None,
        status=status,
        old_pointer=old[0] if old else None,
        new_pointer=new[0] if new else None,
        tensors=tuple(changes),
        tensors_changed=len(counted),
        tensors_total=len(totals),
        bytes_changed=sum(c.bytes for c in counted),
        bytes_total=bytes_total,
        files=files,
        metadata=metadata,
        metrics=metrics,
        bump=bump,
        reason=reason,
        old=old_p,
        new=new_p,
    )


def _tensors(pointer: ptr.Pointer | None) -> dict[str, tuple[str, ptr.TensorSummary]]:
    if pointer is None:
        return {}
    return {name: (f.path, t) for f in pointer.files for name, t in f.tensors.items()}


def _file_changes(old: ptr.Pointer | None, new: ptr.Pointer | None) -> tuple[ValueChange, ...]:
    old_f = {f.path: f.digest for f in old.files} if old else {}
    new_f = {f.path: f.digest for f in new.files} if new else {}
    return tuple(
        ValueChange(p, old_f.get(p), new_f.get(p))
        for p in sorted(set(old_f) | set(new_f), key=str.encode)
        if old_f.get(p) != new_f.get(p)
    )


def _metadata_changes(
    old: ptr.Pointer | None, new: ptr.Pointer | None, old_m: Mapping[str, float], new_m: Mapping[str, float],
) -> tuple[ValueChange, ...]:
    from gitmodel.metadata import flatten

    def table(p: ptr.Pointer | None, numeric: Mapping[str, float]) -> dict[str, Any]:
        flat = flatten(p.metadata) if p is not None else {}
        # numeric metrics are compared as metrics, with their direction
        return {k: plain(v) for k, v in flat.items() if not (k.startswith("metrics.") and k[8:] in numeric)}

    a, b = table(old, old_m), table(new, new_m)
    if old is not None and new is not None and old.name != new.name:
        a["name"], b["name"] = old.name, new.name
    return tuple(ValueChange(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def _metric_deltas(old: Mapping[str, float], new: Mapping[str, float], goals: Goals) -> tuple[MetricDelta, ...]:
    out = []
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        if o == n:
            continue
        # 12 significant digits: 0.902 - 0.891 is 0.011, not 0.01100000000000001
        delta = float(f"{n - o:.12g}") if o is not None and n is not None else None
        verdict = goals.verdict(name, o, n) if o is not None and n is not None else None
        out.append(MetricDelta(name, o, n, delta, goals.of(name), verdict))
    return tuple(out)
