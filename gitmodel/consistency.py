"""Does a pointer say what its manifest says? So a pull-request diff of a pointer cannot lie.

The pointer's size, digest, format and tensor lines are a copy of what the store's manifest
records; `git model add` writes them together. A hand edit (or a bad merge) can change the
pointer alone: its tensor lines would then show changes the bytes do not have. Checking is
cheap, the manifest being small, so `status` does it; `git model check` can call it too.
"""

from __future__ import annotations

from gitmodel.manifest import Manifest
from gitmodel.pointer import FileEntry, TensorSummary

_SHOWN = 3  # tensors named per problem line; the rest are counted


def entry_problems(entry: FileEntry, manifest: Manifest) -> list[str]:
    """One line for each way `entry` disagrees with `manifest`; empty when they agree."""
    problems = []
    for key, said, real in (
        ("size", entry.size, manifest.size),
        ("digest", entry.digest, manifest.digest),
        ("format", entry.format, manifest.format),
    ):
        if said != real:
            problems.append(f"the pointer's {key} {said} is not its manifest's {real}")
    real_tensors = {t.name: TensorSummary(t.dtype, tuple(t.shape), t.digest) for t in manifest.tensors}
    said_tensors = entry.tensors
    for label, names in (
        ("listed in the pointer but not in its manifest", sorted(set(said_tensors) - set(real_tensors))),
        ("in its manifest but missing from the pointer", sorted(set(real_tensors) - set(said_tensors))),
        (
            "different in the pointer and its manifest (dtype, shape or digest)",
            sorted(n for n in set(said_tensors) & set(real_tensors) if said_tensors[n] != real_tensors[n]),
        ),
    ):
        if names:
            problems.append(f"tensor(s) {_names(names)} {label}")
    return problems


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
