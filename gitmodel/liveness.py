"""What the repository still needs from the store: every pointer in history, indexes, worktrees and notes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gitmodel import pointer as ptr
from gitmodel.errors import GitModelError
from gitmodel.gitrepo import GitRepo
from gitmodel.store.loose import ManifestId

MANIFEST_ID_RE = re.compile(rb"blake3:[0-9a-f]{64}")
TAG_PREFIX = "model/"


@dataclass
class PointerVersion:
    """One distinct pointer (by content) found in history, an index or a working tree."""

    blob: str  # the Git blob id of the pointer's bytes
    data: bytes
    commits: list[tuple[int, str]] = field(default_factory=list)  # (commit time, id), parents first
    first_seen: int = 1 << 62  # position of its first commit in a parents-first walk
    places: list[str] = field(default_factory=list)  # "index of <worktree>", "<worktree>/<path>"
    paths: set[str] = field(default_factory=set)

    def manifest_ids(self) -> set[ManifestId]:
        return {ManifestId(m.decode()) for m in MANIFEST_ID_RE.findall(self.data)}

    def decode(self) -> ptr.Pointer:
        where = sorted(self.paths)[0] if self.paths else self.blob
        return ptr.decode(self.data, where)


@dataclass
class Liveness:
    versions: dict[str, PointerVersion]
    notes_manifests: set[ManifestId]
    tags: dict[str, list[str]]

    def live_manifests(self) -> set[ManifestId]:
        out = set(self.notes_manifests)
        for v in self.versions.values():
            out |= v.manifest_ids()
        return out

    def label(self, version: PointerVersion, name: str) -> str:
        """A tag model/<name>/v* on a commit holding it, else the short id of its first commit."""
        for _, commit in version.commits:
            for tag in sorted(self.tags.get(commit, [])):
                if tag.startswith(f"{TAG_PREFIX}{name}/v"):
                    return tag
        if version.commits:
            return version.commits[0][1][:10]
        return "uncommitted"


def scan(git: GitRepo) -> Liveness:
    """Walk every ref, every worktree's index and working tree, and the notes.

    Pointer blobs are found per tree and cached by tree id, so a long history whose
    commits share most of their trees is read about once. A pointer names its manifests
    as `blake3:<hex>` strings; they are matched as strings, not parsed, so a pointer this
    release cannot read (newer, or broken) still keeps its objects alive.
    """
    versions: dict[str, PointerVersion] = {}
    cache: dict[str, frozenset[tuple[str, str]]] = {}
    tips = [commit for _, commit in git.ref_commits()]
    for position, (commit, tree, when) in enumerate(git.walk_commits(tips)):
        for path, blob in git.tree_blobs(tree, ptr.SUFFIX, cache):
            v = versions.get(blob)
            if v is None:
                v = versions[blob] = PointerVersion(blob, git.blob_data(blob), first_seen=position)
            v.commits.append((when, commit))
            v.paths.add(path)
    for top, path, blob in git.worktree_pointers(ptr.SUFFIX):
        if blob not in versions:
            try:
                versions[blob] = PointerVersion(blob, git.blob_data(blob))
            except (KeyError, ValueError):
                continue
        versions[blob].places.append(f"index of {top}")
        versions[blob].paths.add(path)
        try:
            data = (top / path).read_bytes()
        except OSError:
            continue
        wt_blob = git.hash_blob(data)
        if wt_blob not in versions:
            versions[wt_blob] = PointerVersion(wt_blob, data)
        versions[wt_blob].places.append(str(Path(top) / path))
        versions[wt_blob].paths.add(path)
    notes: set[ManifestId] = set()
    notes_cache: dict[str, frozenset[tuple[str, str]]] = {}
    seen: set[str] = set()
    for _, tree, _ in git.walk_commits(git.notes_commits()):
        for _, blob in git.tree_blobs(tree, None, notes_cache):
            if blob not in seen:
                seen.add(blob)
                notes |= {ManifestId(m.decode()) for m in MANIFEST_ID_RE.findall(git.blob_data(blob))}
    return Liveness(versions, notes, git.tags_by_commit(TAG_PREFIX))


def decode_or_none(version: PointerVersion) -> ptr.Pointer | None:
    try:
        return version.decode()
    except GitModelError:
        return None
