"""Every Git access of git-model, through pygit2: discovery, index, config, ignores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from gitmodel.errors import BadPathError, GitModelError, NotARepositoryError


@contextmanager
def _libgit2_without_ca_bundle() -> Iterator[None]:
    """In a `git model` command, import pygit2 without libgit2 parsing the system CA bundle.

    pygit2's import hands libgit2 `ssl.get_default_verify_paths()`, and OpenSSL parses every
    certificate of that file there and then: 105M instructions, a sixth of `git model status`
    (docs/benchmarks.md, "Branch fixed"). A command never uses libgit2's network transports
    (remotes go through obstore, tags and notes through `git push`), so the file is hidden
    during the import; libgit2 keeps the certificate directory, which OpenSSL reads only on a
    TLS handshake. Only with such a directory: with neither, libgit2 refuses the settings and
    the import fails. The variable is put back as it was right after the import, before any
    subprocess starts, so git, obstore and other TLS clients see it unchanged. The Python API
    (gitmodel.cli.main never ran) imports pygit2 as it is.
    """
    cli = sys.modules.get("gitmodel.cli")
    if not getattr(cli, "running", False):
        yield
        return
    import ssl

    if ssl.get_default_verify_paths().capath is None:
        yield
        return
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = ""  # get_default_verify_paths: no such file, so no cafile
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved


with _libgit2_without_ca_bundle():
    import pygit2


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
        # a set: an unmerged path has up to three entries (stages 1-3)
        return sorted({e.path for e in self._index() if e.path.endswith(suffix)})

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
        with _flock(self.git_dir / "gitmodel.lock", wait):
            yield

    @contextmanager
    def shared_refs_lock(self, wait: float = 120.0) -> Iterator[None]:
        """Serialize read-modify-writes of refs every worktree shares (refs/notes/model).

        `lock()` is per worktree (its own git dir), but the notes ref lives in the common
        dir: two worktrees appending events at once would collide on its ref lock, or one
        would move the ref over the other's new commit and drop its event. Take it inside
        `lock()`, never around it.
        """
        with _flock(self.common_dir / "gitmodel-refs.lock", wait):
            yield

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

    # -- core fixes: conflicts, unstaged files, history (issue 13) ------------------------
    def conflicted_paths(self, suffix: str) -> list[str]:
        """Paths ending in `suffix` with unmerged index entries (stages 1-3, a merge in progress)."""
        conflicts = self._index().conflicts
        if conflicts is None:
            return []
        out = set()
        for entries in conflicts:
            path = next(e.path for e in entries if e is not None)
            if path.endswith(suffix):
                out.add(path)
        return sorted(out)

    def untracked_paths(self, suffix: str) -> list[str]:
        """Files ending in `suffix` in the working tree that are neither in the index nor ignored."""
        try:
            found = self._repo.status(untracked_files="all", ignored=False)
        except pygit2.GitError as exc:
            raise GitModelError(f"cannot read the working tree's status: {exc}") from None
        return sorted(p for p, flags in found.items() if p.endswith(suffix) and flags & pygit2.GIT_STATUS_WT_NEW)

    def commit_with_pointer_digest(self, path: str, digest: str, limit: int = 200) -> str | None:
        """The newest of HEAD's last `limit` commits whose `path` mentions `digest`, as 'abc1234 (subject)'."""
        try:
            head = self._repo.head.peel(pygit2.Commit)
        except (pygit2.GitError, KeyError):
            return None
        needle = f'\ndigest = "{digest}"\n'.encode()  # a file's digest line, not a parent's list
        for i, commit in enumerate(self._repo.walk(head.id)):
            if i >= limit:
                break
            try:
                blob = commit.tree[path]
            except KeyError:
                continue
            if isinstance(blob, pygit2.Blob) and needle in blob.data:
                subject = commit.message.split("\n", 1)[0][:60]
                return f"{str(commit.id)[:7]} ({subject})"
        return None

    # -- metadata, check and hooks (issue 16) -------------------------------------------
    def meta_tree_blob_id(self, commitish: str, relpath: str) -> str | None:
        """The blob id of `relpath` in a commit's tree; None if absent or not a blob."""
        try:
            commit = self._repo.revparse_single(commitish).peel(pygit2.Commit)
            obj = commit.tree[relpath]
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return str(obj.id) if obj.type_str == "blob" else None

    def meta_head_blob_id(self, relpath: str) -> str | None:
        return None if self.head_commit() is None else self.meta_tree_blob_id("HEAD", relpath)

    def blob_data(self, oid: str, limit: int | None = None) -> bytes:
        data = self._repo[oid].peel(pygit2.Blob).data
        return bytes(data if limit is None else data[:limit])

    def meta_blob_size(self, oid: str) -> int:
        """A blob's size without reading it whole."""
        return int(self._repo.odb.read_header(oid)[1])

    def meta_hash_file(self, path: Path) -> str:
        """The blob id Git would give the file's bytes."""
        return str(pygit2.hashfile(str(path)))

    def meta_worktree_dirty(self, ignore_suffix: str) -> bool:
        """Tracked files changed (staged or not) since HEAD, ignoring untracked files and pointers."""
        changed = self._repo.status(untracked_files="no")
        return any(not p.endswith(ignore_suffix) and p != ".gitignore" and not p.endswith("/.gitignore")
                   for p, flags in changed.items() if flags != pygit2.enums.FileStatus.CURRENT)

    def meta_index(self) -> pygit2.Index:
        """The index a commit is being made from: GIT_INDEX_FILE when git sets it (`git commit PATH`)."""
        env_index = os.environ.get("GIT_INDEX_FILE")
        if not env_index:
            return self._index()
        path = Path(env_index)
        index = pygit2.Index(str(path if path.is_absolute() else self.workdir / path))
        index.read(True)
        return index

    def meta_index_blob(self, relpath: str, limit: int | None = None) -> bytes | None:
        """The staged bytes of `relpath` (stage 0), or None."""
        try:
            entry = self.meta_index()[relpath]
        except (KeyError, ValueError):
            return None
        return self.blob_data(str(entry.id), limit)

    def meta_staged(self) -> list[tuple[str, str]]:
        """(path, blob id) of each index entry added or changed since HEAD; conflicted entries too."""
        index = self.meta_index()
        head = self.head_commit()
        tree = self._repo[head].peel(pygit2.Commit).tree if head else None
        out = []
        for entry in index:
            if tree is not None:
                try:
                    if str(tree[entry.path].id) == str(entry.id):
                        continue
                except KeyError:
                    pass
            out.append((entry.path, str(entry.id)))
        if index.conflicts is not None:
            for ancestor, ours, theirs in index.conflicts:
                side = ours or theirs or ancestor
                out.append((side.path, str(side.id)))
        return sorted(set(out))

    def meta_changed_between(self, old: str | None, new: str, suffix: str) -> list[str]:
        """Paths ending in `suffix` whose blob differs between two commits (`old` None: all in `new`)."""
        new_tree = self._repo.revparse_single(new).peel(pygit2.Commit).tree
        if old is None or set(old) == {"0"}:
            return sorted(p for p in _tree_paths(new_tree) if p.endswith(suffix))
        old_tree = self._repo.revparse_single(old).peel(pygit2.Commit).tree
        out = set()
        for delta in old_tree.diff_to_tree(new_tree).deltas:
            for path in (delta.old_file.path, delta.new_file.path):
                if path.endswith(suffix):
                    out.add(path)
        return sorted(out)

    def meta_pushed_blobs(self, local: str, remote_sha: str, suffix: str) -> list[tuple[str, str]]:
        """(path, blob id) of files ending in `suffix` added or changed by the commits a push sends.

        The commits are those reachable from `local` and not from `remote_sha` (when we have
        it) nor from any remote-tracking ref: a commit fetched from any remote was not made
        here, and its data is not ours to vouch for (pushing a clone's branch to a new remote
        must not walk, nor refuse, the whole history).
        """
        walker = self._repo.walk(self._repo[local].id, pygit2.enums.SortMode.TOPOLOGICAL)
        if set(remote_sha) != {"0"} and remote_sha in self._repo:
            walker.hide(self._repo[remote_sha].id)
        for ref in self._repo.references:
            if ref.startswith("refs/remotes/"):
                try:
                    walker.hide(self._repo.references[ref].peel(pygit2.Commit).id)
                except (pygit2.GitError, ValueError):
                    continue
        out: set[tuple[str, str]] = set()
        for commit in walker:
            parents = commit.parents
            if not parents:
                out |= {(p, oid) for p, oid in _tree_blobs(commit.tree) if p.endswith(suffix)}
                continue
            for parent in parents:
                for delta in parent.tree.diff_to_tree(commit.tree).deltas:
                    path = delta.new_file.path
                    if path.endswith(suffix) and delta.status != pygit2.enums.DeltaStatus.DELETED:
                        out.add((path, str(delta.new_file.id)))
        return sorted(out)

    def meta_hooks_dir(self) -> Path:
        """Where git runs hooks from: core.hooksPath if set, else hooks/ in the common git dir."""
        configured = self.config_get("core.hooksPath")
        if configured:
            path = Path(configured).expanduser()
            return path if path.is_absolute() else self.workdir / path
        return self.common_dir / "hooks"

    def meta_config_bool(self, key: str, default: bool) -> bool:
        try:
            return bool(self._repo.config.get_bool(key))
        except KeyError:
            return default
        except pygit2.GitError as exc:
            raise GitModelError(f"git config {key}: {exc}; set it to true or false") from None

    # -- versions, stages and the audit trail (gitmodel/versions.py, audit.py, registry.py) --
    def head_commit(self) -> str | None:
        try:
            return str(self._repo.head.peel(pygit2.Commit).id)
        except (pygit2.GitError, KeyError):
            return None  # unborn branch

    def empty_blob(self) -> str:
        return str(self._repo.create_blob(b""))

    def resolve_commit(self, spec: str) -> str | None:
        """The commit a commit-ish names (a sha, a branch, a tag, HEAD~2...), or None."""
        try:
            obj = self._repo.revparse_single(spec)
            return str(obj.peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            return None

    def commit_time(self, commit: str) -> int:
        obj = self._repo[commit]
        assert isinstance(obj, pygit2.Commit)
        return int(obj.commit_time)

    def paths_in_commit(self, commit: str, suffix: str) -> list[str]:
        """Every blob path in the commit's tree ending with `suffix`."""
        out: list[str] = []
        stack: list[tuple[str, pygit2.Tree]] = [("", self._repo[commit].peel(pygit2.Tree))]
        while stack:
            prefix, tree = stack.pop()
            for entry in tree:
                path = prefix + str(entry.name)
                if entry.type_str == "tree":
                    sub = self._repo[entry.id]
                    assert isinstance(sub, pygit2.Tree)
                    stack.append((path + "/", sub))
                elif path.endswith(suffix):
                    out.append(path)
        return sorted(out)

    def blob_at(self, commit: str, path: str) -> bytes | None:
        try:
            entry = self._repo[commit].peel(pygit2.Tree)[path]
        except KeyError:
            return None
        obj = self._repo[entry.id]
        return bytes(obj.data) if isinstance(obj, pygit2.Blob) else None

    def refs_under(self, prefix: str) -> dict[str, str]:
        """Reference name → the object it points at, for every ref starting with `prefix`."""
        out: dict[str, str] = {}
        for ref in self._repo.references.iterator():  # one pass; a lookup per name costs a file read each
            if ref.name.startswith(prefix):
                out[ref.name] = str(ref.target)
        return out

    def ref_names(self, prefix: str) -> list[str]:
        """Names of the references starting with `prefix` (names only: no file read per ref)."""
        return [name for name in self._repo.listall_references() if name.startswith(prefix)]

    def ref_target(self, name: str) -> str | None:
        ref = self._repo.references.get(name)
        return None if ref is None else str(ref.resolve().target)

    def set_ref(self, name: str, target: str) -> None:
        self._repo.references.create(name, pygit2.Oid(hex=target), force=True)

    def read_tag(self, oid: str) -> tuple[str, str, str, int] | None:
        """An annotated tag object: (target commit, message, tagger 'Name <email>', time); None if lightweight."""
        obj = self._repo[oid]
        if not isinstance(obj, pygit2.Tag):
            return None
        tagger = obj.tagger
        who = f"{tagger.name} <{tagger.email}>" if tagger is not None else ""
        when = int(tagger.time) if tagger is not None else 0
        # a version tag names its commit directly; peeling would load the commit as well
        direct = obj.read_raw().startswith(b"object %s\ntype commit\n" % str(obj.target).encode())
        target = obj.target if direct else obj.peel(pygit2.Commit).id
        return str(target), str(obj.message), who, when

    def create_tag(self, name: str, commit: str, message: str, who: tuple[str, str]) -> None:
        """An annotated tag; signed by `git tag` itself when the user signs tags (tag.gpgSign)."""
        if self._config_bool("tag.gpgSign"):
            # pygit2 cannot sign: git does, with whatever key and format (GPG, SSH) the user set
            self._git("tag", "-a", "-F", "-", name, commit, stdin=message)
            return
        tagger = pygit2.Signature(who[0], who[1])
        try:
            self._repo.create_tag(name, pygit2.Oid(hex=commit), pygit2.enums.ObjectType.COMMIT, tagger, message)
        except pygit2.AlreadyExistsError:  # made by another process since the caller looked
            raise GitModelError(f"tag {name} exists already (created a moment ago); choose another version") from None

    def verify_tag(self, name: str) -> str | None:
        """None when the tag's signature is good; else git's reason (one line)."""
        return self._verify("verify-tag", name)

    def _verify(self, command: str, name: str) -> str | None:
        """Run `git verify-tag` or `verify-commit`: None if good, else git's last line of reason."""
        cp = self._git(command, name, check=False)
        if cp.returncode == 0:
            return None
        lines = [line for line in cp.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"git {command} exited {cp.returncode}"

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant:
            return True
        return bool(self._repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor)))

    def notes(self, ref: str) -> list[tuple[str, bytes]]:
        """(annotated object, note bytes) of every note under the notes ref `ref`."""
        if self._repo.references.get(ref) is None:
            return []
        return [(str(n.annotated_id), self._blob(n.id)) for n in self._repo.notes(ref)]  # type: ignore[call-arg]

    def note(self, ref: str, annotated: str) -> bytes | None:
        try:
            n = self._repo.lookup_note(annotated, ref)
        except KeyError:
            return None
        return self._blob(n.id)

    def _blob(self, oid: pygit2.Oid) -> bytes:
        obj = self._repo[oid]
        assert isinstance(obj, pygit2.Blob)
        return bytes(obj.data)

    def write_note(self, ref: str, annotated: str, data: str, who: tuple[str, str], message: str) -> None:
        """Set the note on `annotated`, as one new commit of `ref` with `message`.

        Callers hold `shared_refs_lock()`, so no other git-model process is writing `ref`.
        """
        self._clear_stale_ref_lock(ref)
        sig = pygit2.Signature(who[0], who[1])
        try:
            self._repo.create_note(data, sig, sig, annotated, ref, True)
            # libgit2 names every notes commit alike; the same tree and parents, with a message
            # that says which event it adds, make `git log refs/notes/model` readable
            made = self._repo.references[ref].peel(pygit2.Commit)
            commit = self._repo.create_commit(None, sig, sig, message, made.tree_id, made.parent_ids)
            self.set_ref(ref, str(commit))
        except pygit2.GitError as exc:
            lock = self.common_dir / (ref + ".lock")
            raise GitModelError(
                f"cannot record the audit event in {ref}: {str(exc).rstrip(': ')}; "
                f"if no git command is running, remove {lock} and run the command again"
            ) from None

    def _clear_stale_ref_lock(self, ref: str, wait: float = 2.0) -> None:
        """Remove `ref`'s lock file if a killed process left it.

        Git holds a ref's lock for the few milliseconds of an update; under our own lock no
        git-model process can hold it, so one still there after `wait` seconds is stale (a
        `git model add` SIGKILLed while writing its event), and every later event would fail.
        """
        lock = self.common_dir / (ref + ".lock")
        deadline = time.monotonic() + wait
        while lock.exists():
            if time.monotonic() > deadline:
                lock.unlink(missing_ok=True)
                return
            time.sleep(0.05)

    def signs(self) -> bool:
        """Whether the user signs tags (tag.gpgSign): then registry decisions are signed too."""
        return self._config_bool("tag.gpgSign")

    def sign_tip(self, ref: str, message: str) -> None:
        """Replace the tip commit of `ref` by the same commit signed by git (GPG or SSH, as configured).

        pygit2 cannot sign; `git commit-tree -S` signs with the user's key and git's settings.
        """
        tip = self._repo.references[ref].peel(pygit2.Commit)
        parents = [arg for p in tip.parent_ids for arg in ("-p", str(p))]
        signed = self._git("commit-tree", "-S", str(tip.tree_id), *parents, "-F", "-", stdin=message).stdout.strip()
        self.set_ref(ref, signed)

    def signed_commits(self, ref: str) -> list[tuple[str, str]]:
        """(commit, message) of every signed commit in the history of `ref`."""
        tip = self.ref_target(ref)
        if tip is None:
            return []
        out = []
        for commit in self._repo.walk(pygit2.Oid(hex=tip)):
            if commit.gpg_signature[0] is not None:
                out.append((str(commit.id), str(commit.message)))
        return out

    def verify_commit(self, commit: str) -> str | None:
        """None when the commit's signature is good; else git's reason (one line)."""
        return self._verify("verify-commit", commit)

    def merge_notes(self, ref: str, other: str) -> None:
        """Merge the notes commit `other` into `ref`, concatenating, sorting and de-duplicating lines.

        pygit2 has no notes merge; `git notes merge -s cat_sort_uniq` never conflicts.
        """
        self._git("notes", f"--ref={ref}", "merge", "-q", "-s", "cat_sort_uniq", other)

    def remotes(self) -> list[str]:
        return sorted(str(r.name) for r in self._repo.remotes)

    def config_values(self, key: str) -> list[str]:
        try:
            return [str(v) for v in self._repo.config.get_multivar(key)]
        except KeyError:
            return []

    def config_add(self, key: str, value: str) -> None:
        self._repo.config.set_multivar(key, "^$", value)  # '^$' matches nothing: append

    def fetch_refspecs(self, remote: str, refspecs: list[str]) -> str | None:
        """`git fetch` of some refspecs from a remote (transports, auth); None, or git's last line."""
        cp = self._git("fetch", "-q", remote, *refspecs, check=False)
        if cp.returncode == 0:
            return None
        lines = [line for line in cp.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"git fetch exited {cp.returncode}"

    def _config_bool(self, key: str) -> bool:
        try:
            return bool(self._repo.config.get_bool(key))
        except (KeyError, pygit2.GitError):
            return False

    def _git(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run git in this repository, only for what pygit2 cannot do (signing, notes merge, fetch)."""
        env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
        cp = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "--work-tree", str(self.workdir), *args],
            input=stdin, capture_output=True, text=True, env=env,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        if check and cp.returncode != 0:
            lines = [line for line in cp.stderr.splitlines() if line.strip()]
            raise GitModelError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {cp.returncode}'}")
        return cp


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

    # -- review: diff and compare (issue 18) ---------------------------------------------
    def review_merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits, as `git diff A...B` uses it; None if unrelated."""
        try:
            base = self._repo.merge_base(a, b)
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return str(base) if base is not None else None
    # -- training runs: commits on refs/model-runs/*, never the index, HEAD or a branch --------
    def run_commit(self, files: dict[str, bytes], parents: list[str], message: str, who: tuple[str, str]) -> str:
        """Write a commit whose tree holds exactly `files` ('/'-separated paths); move no ref.

        Built from objects alone (blobs, trees, the commit), so the user's index, HEAD,
        branches and working tree are never read or written.
        """
        root: dict[str, object] = {}
        for path, data in files.items():
            *dirs, base = path.split("/")
            node = root
            for d in dirs:
                child = node.setdefault(d, {})
                assert isinstance(child, dict)
                node = child
            node[base] = self._repo.create_blob(data)

        def write(node: dict[str, object]) -> pygit2.Oid:
            builder = self._repo.TreeBuilder()
            for name, value in sorted(node.items()):
                if isinstance(value, dict):
                    builder.insert(name, write(value), pygit2.enums.FileMode.TREE)
                else:
                    assert isinstance(value, pygit2.Oid)
                    builder.insert(name, value, pygit2.enums.FileMode.BLOB)
            return builder.write()

        sig = pygit2.Signature(who[0], who[1])
        oid = self._repo.create_commit(None, sig, sig, message, write(root), [pygit2.Oid(hex=p) for p in parents])
        return str(oid)

    def run_commit_parents(self, commit: str) -> list[str]:
        obj = self._repo[commit]
        assert isinstance(obj, pygit2.Commit)
        return [str(p) for p in obj.parent_ids]

    def run_set_ref(self, name: str, target: str, old: str | None) -> None:
        """Move `name` to `target` only if it still points at `old` (None: it must not exist)."""
        current = self.ref_target(name)
        if current != old:
            raise GitModelError(f"{name} moved while this run was saving to it; is another process saving to this run?")
        self._repo.references.create(name, pygit2.Oid(hex=target), force=True)

    # -- hardening: reading back a run commit's message (which process wrote it) --------------
    def commit_message(self, commit: str) -> str:
        obj = self._repo.get(commit)
        return str(obj.message) if isinstance(obj, pygit2.Commit) else ""


@contextmanager
def _flock(path: Path, wait: float) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if needed), waiting up to `wait` seconds."""
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


def _common_dir(git_dir: Path) -> Path:
    """The directory shared by all worktrees (where the default store lives)."""
    marker = git_dir / "commondir"
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / text).resolve()


def _tree_blobs(tree: pygit2.Tree, prefix: str = "") -> Iterator[tuple[str, str]]:
    for obj in tree:
        path = prefix + str(obj.name)
        if obj.type_str == "tree":
            yield from _tree_blobs(obj, path + "/")  # type: ignore[arg-type]
        elif obj.type_str == "blob":
            yield path, str(obj.id)


def _tree_paths(tree: pygit2.Tree) -> list[str]:
    return [p for p, _ in _tree_blobs(tree)]
