"""How hard the reliability harnesses try: a short slice by default, the full run on request.

The default run (and `.ci/run`) takes a short slice of every harness, so it stays within the
suite's time. `GITMODEL_LONG=1` runs the full counts written in docs/reliability.md;
`GITMODEL_SEED=N` replays one run exactly (every harness prints the seed it used when it fails).
"""

from __future__ import annotations

import os
import random

LONG = os.environ.get("GITMODEL_LONG") == "1"


def budget(short: int, long: int) -> int:
    """`long` under GITMODEL_LONG=1, else `short` (a count of kills, races, inputs...)."""
    return long if LONG else short


def seed() -> int:
    """GITMODEL_SEED if set, else a fresh random seed (report it in failure messages)."""
    given = os.environ.get("GITMODEL_SEED")
    return int(given) if given else random.SystemRandom().randrange(1 << 32)
