"""Typed errors of the git-model library; each message is one line a user can act on."""

from __future__ import annotations


class GitModelError(Exception):
    """Base of every error the library raises on purpose; str() is the user's message."""


class NotARepositoryError(GitModelError):
    """The command runs outside a Git working tree."""


class NotInitializedError(GitModelError):
    """The repository has no .gitmodel.toml yet."""


class BadPathError(GitModelError):
    """A path given by the user cannot be used (outside the repo, tracked, missing...)."""


class FileChangedError(GitModelError):
    """A file changed (shrank, grew or was rewritten) while git-model was reading it."""

    def __init__(self, path: object) -> None:
        super().__init__(f"{path} changed while it was being read; run the command again when it is complete")
        self.path = path


class NotAModelError(GitModelError):
    """A name or path names no model pointer."""


class NotAPointerError(GitModelError):
    """A file is not a git-model pointer at all."""


class BadPointerError(GitModelError):
    """A file is a pointer, but broken: a key is missing, mistyped or invalid."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: broken pointer: {problem}")
        self.path = path
        self.problem = problem


class ConflictedPointerError(GitModelError):
    """A pointer is in the middle of a merge: unmerged index entries or conflict markers."""

    def __init__(self, pointer_path: str, unmerged: bool) -> None:
        model = pointer_path[: -len(".model.toml")] if pointer_path.endswith(".model.toml") else pointer_path
        keep = (
            f"'git checkout --ours -- {pointer_path}' or '--theirs'" if unmerged
            else f"edit it to one side, or 'git checkout HEAD -- {pointer_path}'"
        )
        super().__init__(
            f"{pointer_path} has a merge conflict: keep one version with {keep}, "
            f"then 'git add {pointer_path}' and 'git model checkout {model}'"
        )
        self.path = pointer_path
        self.unmerged = unmerged


class UnsupportedVersionError(GitModelError):
    """A pointer, manifest or store was written by a newer release."""


# What to do when a pointer names data this store lacks; the one place that says it, so the
# CLI, status and the errors agree.
MISSING_DATA_HINT = (
    "run 'git model pull' to get it from the remote (docs/remotes.md), or point "
    "'git config model.store' at the store of the clone that added it"
)


class MissingObjectError(GitModelError):
    """A chunk or manifest is not in the local store."""

    def __init__(self, kind: str, object_id: str, hint: str = "") -> None:
        message = f"{kind} {object_id} is not in the store"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.kind = kind
        self.object_id = object_id
        self.hint = hint

    def with_hint(self, hint: str) -> MissingObjectError:
        """This error with `hint` (what to do in the caller's situation), unless it has one."""
        return self if self.hint else MissingObjectError(self.kind, self.object_id, hint)


class DamagedObjectError(GitModelError):
    """An object in the store does not hold what its name says."""

    def __init__(self, path: str, expected: str, got: str) -> None:
        super().__init__(f"damaged object {path}: expected {expected}, got {got}")
        self.path = path
        self.expected = expected
        self.got = got


class LocalChangesError(GitModelError):
    """Checkout would overwrite a model file changed since git-model wrote or added it."""

    def __init__(self, paths: list[str]) -> None:
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        super().__init__(
            f"{shown}: local changes would be overwritten; "
            "run 'git model add' to keep them, or 'git model checkout --force' to discard them"
        )
        self.paths = paths


def one_line(text: str) -> str:
    """`text` with every line break escaped (\\n, \\x0b, \\u2028...), for a name a user's file gave
    that goes into an error message, which must stay one line."""
    return "".join(ch if len(f"a{ch}b".splitlines()) == 1 else ch.encode("unicode_escape").decode() for ch in text)
