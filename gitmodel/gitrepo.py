"""Every Git access of git-model, through pygit2: discovery, index, config, ignores."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import pygit2

from gitmodel.errors import BadPathError, GitModelError, NotARepositoryError


class GitRepo:
    """A non-bare repository: its working tree, git dirs, index and config."""

    def __init__(self, start: Path | None = None) -> None:
        start = Path.cwd() if start is None else start
        # `git --git-dir=X --work-tree=Y model ...` and hooks pass these to us
        env_dir, env_tree = os.environ.get("GIT_DIR"), os.environ.get("GIT_WORK_TREE")
        found = env_dir if env_dir else pygit2.discover_repository(str(start))
        if found is None:
            raise NotARepositoryError(f"{start} is not inside a Git repository: run 'git init' first")
        try:
            self._repo = pygit2.Repository(found)
        except pygit2.GitError as exc:
            raise NotARepositoryError(f"cannot open the Git repository at {found}: {exc}") from None
        if env_tree:
            self._repo.workdir = str(Path(env_tree).resolve())
        if self._repo.is_bare or self._repo.workdir is None:
            raise NotARepositoryError(f"{found} is a bare repository; git-model needs a working tree")
        self.workdir = Path(self._repo.workdir).resolve()
        self.git_dir = Path(self._repo.path).resolve()
        self.common_dir = _common_dir(self.git_dir)

    # -- paths --------------------------------------------------------------------------
    def relpath(self, path: Path) -> str:
        """`path` (absolute, or relative to the cwd) as a repo-relative POSIX path."""
        absolute = Path(os.path.abspath(path))
        try:
            rel = absolute.relative_to(self.workdir)
        except ValueError:
            resolved = absolute.resolve()  # cwd may be reached through a symlink
            try:
                rel = resolved.relative_to(self.workdir)
            except ValueError:
                raise BadPathError(f"{path} is outside the repository {self.workdir}") from None
        posix = PurePosixPath(*rel.parts).as_posix()
        if posix == "." or posix.split("/", 1)[0] == ".git":
            raise BadPathError(f"{path} is not a file in the working tree")
        return posix

    def abspath(self, relpath: str) -> Path:
        return self.workdir / relpath

    # -- index --------------------------------------------------------------------------
    def _index(self) -> pygit2.Index:
        try:
            index = self._repo.index
            index.read(False)
        except pygit2.GitError as exc:
            raise GitModelError(
                f"cannot read Git's index ({exc}); git-model does not support split or sparse indexes yet: "
                "git config core.splitIndex false; git sparse-checkout disable"
            ) from None
        return index

    def tracked(self, relpath: str) -> list[str]:
        """Index entries at `relpath` or below it (a directory)."""
        prefix = relpath.rstrip("/") + "/"
        return [e.path for e in self._index() if e.path == relpath or e.path.startswith(prefix)]

    def indexed_paths(self, suffix: str) -> list[str]:
        return sorted(e.path for e in self._index() if e.path.endswith(suffix))

    def stage(self, relpaths: Iterable[str], wait: float = 10.0) -> None:
        """Add files to the index; wait out another git command's index.lock for a while."""
        paths = list(relpaths)
        deadline = time.monotonic() + wait
        while True:
            try:
                index = self._index()
                for rel in paths:
                    index.add(rel)
                index.write()
                return
            except (pygit2.GitError, OSError) as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise GitModelError(
                        f"cannot update Git's index: {exc}; if no git command is running, remove {self.git_dir / 'index.lock'}"
                    ) from None
                time.sleep(0.05)

    @contextmanager
    def lock(self, wait: float = 120.0) -> Iterator[None]:
        """Serialize git-model's read-modify-write of the index, .gitignore files and caches.

        Two `git model add` runs in one working tree would otherwise each read the index,
        add their pointer and write it back, and one of the two pointers would be lost.
        """
        path = self.git_dir / "gitmodel.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: no lock, as before
                yield
                return
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GitModelError(
                            f"another git model command has held {path} for {wait:.0f} s; try again when it is done"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def is_ignored(self, relpath: str) -> bool:
        return bool(self._repo.path_is_ignored(relpath))

    # -- config -------------------------------------------------------------------------
    def config_get(self, key: str) -> str | None:
        try:
            value = self._repo.config[key]
        except KeyError:
            return None
        return str(value)

    def config_set(self, key: str, value: str) -> None:
        self._repo.config[key] = value


    # -- history, for gc, fsck and du (store v2) -----------------------------------------
    def ref_commits(self) -> list[tuple[str, str]]:
        """(ref name, commit id) of every ref that leads to a commit, HEAD and stashes included;
        refs/notes/* are left to `notes_blobs`."""
        out: list[tuple[str, str]] = []
        names = ["HEAD", *self._repo.references]
        for name in names:
            if name.startswith("refs/notes/"):
                continue
            try:
                commit = self._repo.revparse_single(name).peel(pygit2.Commit)
            except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
                continue  # an unborn HEAD, or a ref to a tree or blob
            out.append((name, str(commit.id)))
        try:
            stashes = self._repo.listall_stashes()
        except pygit2.GitError:
            stashes = []
        for i, stash in enumerate(stashes):  # older stashes live only in refs/stash's reflog
            out.append((f"stash@{{{i}}}", str(stash.commit_id)))
        return out

    def walk_commits(self, tips: Iterable[str]) -> Iterator[tuple[str, str, int]]:
        """(commit id, tree id, commit time) of every commit reachable from `tips`, each once,
        parents before children."""
        unique = sorted(set(tips))
        if not unique:
            return
        order = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME | pygit2.enums.SortMode.REVERSE
        walker = self._repo.walk(unique[0], order)
        for tip in unique[1:]:
            walker.push(tip)
        for commit in walker:
            yield str(commit.id), str(commit.tree_id), commit.commit_time

    def tree_blobs(
        self, tree_id: str, suffix: str | None, cache: dict[str, frozenset[tuple[str, str]]]
    ) -> frozenset[tuple[str, str]]:
        """(path, blob id) of the blobs under a tree (only names ending with `suffix`, if given).

        `cache` maps tree ids to answers: a subtree unchanged between commits is read once.
        """
        found = cache.get(tree_id)
        if found is not None:
            return found
        out: set[tuple[str, str]] = set()
        tree = self._repo[tree_id]
        for entry in tree:  # type: ignore[attr-defined]
            if entry.type_str == "tree":
                out |= {(f"{entry.name}/{p}", b) for p, b in self.tree_blobs(str(entry.id), suffix, cache)}
            elif entry.type_str == "blob" and (suffix is None or entry.name.endswith(suffix)):
                out.add((entry.name, str(entry.id)))
        answer = frozenset(out)
        cache[tree_id] = answer
        return answer

    def blob_bytes(self, blob_id: str) -> bytes:
        return bytes(self._repo[blob_id].data)  # type: ignore[attr-defined]

    def hash_blob(self, data: bytes) -> str:
        """The id Git would give `data` as a blob."""
        return str(pygit2.hash(data))

    def notes_commits(self) -> list[str]:
        """Tips of every notes ref (refs/notes/*)."""
        out = []
        for name in self._repo.references:
            if name.startswith("refs/notes/"):
                try:
                    out.append(str(self._repo.revparse_single(name).peel(pygit2.Commit).id))
                except (KeyError, ValueError, pygit2.GitError):
                    continue
        return out

    def worktree_pointers(self, suffix: str) -> list[tuple[Path, str, str]]:
        """(worktree, path, staged blob id) of the pointers in the index of every worktree."""
        out: list[tuple[Path, str, str]] = []
        tops = [self.workdir]
        for name in self._repo.list_worktrees():
            try:
                tops.append(Path(self._repo.lookup_worktree(name).path))
            except pygit2.GitError:
                continue
        for top in tops:
            try:
                repo = self._repo if top == self.workdir else pygit2.Repository(str(top))
                index = repo.index
                index.read(False)
            except (pygit2.GitError, OSError):
                continue  # a worktree whose folder was deleted: `git worktree prune` drops it
            out += [(top, e.path, str(e.id)) for e in index if e.path.endswith(suffix)]
        return out

    def tags_by_commit(self, prefix: str) -> dict[str, list[str]]:
        """Commit id -> names of the tags under refs/tags/`prefix` that point (peeled) at it."""
        out: dict[str, list[str]] = {}
        for name in self._repo.references:
            if name.startswith("refs/tags/" + prefix):
                try:
                    commit = self._repo.revparse_single(name).peel(pygit2.Commit)
                except (KeyError, ValueError, pygit2.GitError):
                    continue
                out.setdefault(str(commit.id), []).append(name[len("refs/tags/"):])
        return out


def _common_dir(git_dir: Path) -> Path:
    """The directory shared by all worktrees (where the default store lives)."""
    marker = git_dir / "commondir"
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / text).resolve()
