"""Scale of the registry: many models and one model with many versions, read back whole and in order.

The repository is benchmarks/registry.py's (real annotated tags with their cards, one `tagged`
event per version, promotions and rollbacks, written in bulk with git fast-import by
gitmodel's own code); the default run holds 20 models and 100 versions, GITMODEL_LONG=1 the
issue's 200 and 1,000. Times are the benchmark's business (benchmarks/scale.py); here every
command must list every version, in order, and agree with the others.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import Repo, make_env

from tests.reliability.budget import budget

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.registry import build  # noqa: E402

MODELS = budget(20, 200)
VERSIONS = budget(100, 1000)


def expected_production(versions: int) -> str:
    """Who holds production after the builder's schedule: a promotion every 20 versions, and a
    rollback to the previous holder at every version 80 modulo 100."""
    holder: list[int] = []
    for v in range(0, versions, 20):
        holder.append(v)
        if v % 100 == 80 and len(holder) >= 2:
            holder.pop()
    return f"1.{holder[-1]}.0"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    base = tmp_path_factory.mktemp("registry")
    env = make_env(base / "home")
    build(base / "repo", env, MODELS, VERSIONS)
    repo = Repo(base / "repo", env)
    repo.gm("checkout", "-q")  # every model's file in the working tree
    return repo


def test_log_lists_every_version_newest_first(registry: Repo) -> None:
    doc = json.loads(registry.gm("log", "big", "--json").stdout)
    got = [v["version"] for v in doc["versions"]]
    assert got == [f"1.{v}.0" for v in reversed(range(VERSIONS))], got[:5]
    commits = [v["commit"] for v in doc["versions"]]
    assert len(set(commits)) == VERSIONS  # one commit per version, as the builder made them
    tags = registry.git("for-each-ref", "--format=%(refname) %(*objectname)", "refs/tags/model/big/").stdout
    by_tag = dict(line.split() for line in tags.splitlines())
    assert all(by_tag[f"refs/tags/model/big/v{v['version']}"] == v["commit"] for v in doc["versions"])
    holders = [v["version"] for v in doc["versions"] if "production" in v["stages"]]
    assert holders == [expected_production(VERSIONS)], holders


def test_ls_stages_and_audit_agree_with_the_log(registry: Repo) -> None:
    models = json.loads(registry.gm("ls", "--json").stdout)["models"]
    assert len(models) == MODELS + 1  # and the builder's "seed", whose file every pointer names
    big = next(m for m in models if m["model"] == "big")
    assert (big["latest"], big["versions"]) == (f"1.{VERSIONS - 1}.0", VERSIONS)
    assert big["stages"] == {"production": expected_production(VERSIONS)}
    assert all((m["latest"], m["versions"]) == ("1.0.0", 1) for m in models if m["model"] not in ("big", "seed"))
    stages = registry.gm("stages", "big").stdout
    assert f"v{expected_production(VERSIONS)}" in stages, stages
    events = json.loads(registry.gm("audit", "big", "--json").stdout)["events"]
    tagged = [e["version"] for e in events if e["event"] == "tagged"]
    assert sorted(tagged, key=lambda v: int(v.split(".")[1])) == [f"1.{v}.0" for v in range(VERSIONS)]
    assert registry.gm("audit", "big", "--verify").returncode == 0


def test_status_lists_every_model_clean(registry: Repo) -> None:
    doc = json.loads(registry.gm("status", "--json").stdout)
    states = {m["name"]: m["state"] for m in doc["models"]}
    assert len(states) == MODELS + 1 and set(states.values()) == {"clean"}, states
