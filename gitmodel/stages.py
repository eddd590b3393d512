"""Stages replayed from audit events: who holds each stage now, at any past time, and before."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from gitmodel.audit import Event, event_time
from gitmodel.errors import GitModelError

STAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_HEX_RE = re.compile(r"[0-9a-fA-F]{4,40}")
RESERVED = ("latest",)


def check_stage_name(stage: str) -> None:
    """Stage names are told apart from versions and commits in NAME@REF: refuse the ambiguous."""
    if not STAGE_RE.fullmatch(stage):
        raise GitModelError(
            f"'{stage}' is not a valid stage name: start with a letter, then letters, digits, '_' or '-' (at most 63)"
        )
    if stage in RESERVED or _HEX_RE.fullmatch(stage) or re.fullmatch(r"v[0-9].*", stage):
        raise GitModelError(
            f"'{stage}' cannot be a stage name: it reads as 'latest', a version or a commit id in NAME@{stage}"
        )


@dataclass
class StageHistory:
    """One stage of one model: the stack of holders (rollback pops) and every change in order."""

    stage: str
    stack: list[str] = field(default_factory=list)
    changes: list[Event] = field(default_factory=list)

    @property
    def holder(self) -> str | None:
        return self.stack[-1] if self.stack else None

    def holder_at(self, when: datetime) -> str | None:
        holder = None
        for e in self.changes:  # causal order; with skewed clocks a later change may look earlier
            if event_time(e.at) <= when:
                holder = e.version
        return holder


def replay(events: list[Event]) -> dict[str, StageHistory]:
    """Stage name → its history, from one model's events in causal order."""
    out: dict[str, StageHistory] = {}
    for e in events:
        if e.event not in ("promoted", "rolled-back") or e.stage is None or e.version is None:
            continue
        h = out.setdefault(e.stage, StageHistory(e.stage))
        if e.event == "promoted":
            h.stack.append(e.version)
        else:
            # events merged from two clones may have rolled back concurrently: pop what the
            # event replaced if it is on top, and make sure the restored version is on top
            if h.stack and h.stack[-1] == e.replaced:
                h.stack.pop()
            if not h.stack or h.stack[-1] != e.version:
                h.stack.append(e.version)
        h.changes.append(e)
    return out


def stages_of(histories: dict[str, StageHistory], version: str) -> list[str]:
    """The stages `version` holds now, sorted."""
    return sorted(s for s, h in histories.items() if h.holder == version)
