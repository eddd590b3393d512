"""Every Git access of git-model, through pygit2: discovery, index, config, ignores."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pygit2

from gitmodel.errors import BadPathError, GitModelError, NotARepositoryError


class GitRepo:
    """A non-bare repository: its working tree, git dirs, index and config."""

    def __init__(self, start: Path | None = None) -> None:
        start = Path.cwd() if start is None else start
        found = pygit2.discover_repository(str(start))
        if found is None:
            raise NotARepositoryError(f"{start} is not inside a Git repository: run 'git init' first")
        try:
            self._repo = pygit2.Repository(found)
        except pygit2.GitError as exc:
            raise NotARepositoryError(f"cannot open the Git repository at {found}: {exc}") from None
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
        index = self._repo.index
        index.read(False)
        return index

    def tracked(self, relpath: str) -> list[str]:
        """Index entries at `relpath` or below it (a directory)."""
        prefix = relpath.rstrip("/") + "/"
        return [e.path for e in self._index() if e.path == relpath or e.path.startswith(prefix)]

    def indexed_paths(self, suffix: str) -> list[str]:
        return sorted(e.path for e in self._index() if e.path.endswith(suffix))

    def stage(self, relpaths: Iterable[str]) -> None:
        index = self._index()
        try:
            for rel in relpaths:
                index.add(rel)
            index.write()
        except (pygit2.GitError, OSError) as exc:
            raise GitModelError(f"cannot update Git's index: {exc}; is another git command running?") from None

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


def _common_dir(git_dir: Path) -> Path:
    """The directory shared by all worktrees (where the default store lives)."""
    marker = git_dir / "commondir"
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / text).resolve()
