"""The CI recipe of docs/review.md: docs/ci/pr-diff.sh writes the comment body in a fresh clone of a
bare origin, and hands it to `gh` (a stand-in here); the workflow runs that script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import Repo, _copy_template, make_env
from tests.review.helpers import add, fine_tune, first_version

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "ci" / "pr-diff.sh"
WORKFLOW = ROOT / "docs" / "ci" / "model-diff.yml"


@pytest.fixture(scope="module")
def _origin(_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare origin with `sent` v1 on main and a branch `ft` that fine-tunes one layer; built once."""
    base = tmp_path_factory.mktemp("ci")
    repo = _copy_template(_templates, "committed", base)
    origin = base / "origin.git"
    repo.run("git", "init", "-q", "--bare", str(origin), cwd=base)
    v1 = first_version(repo)
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    repo.git("checkout", "-q", "-b", "ft")
    add(repo, fine_tune(v1, ("layer1.weight",)), "--metric", "loss=0.2")
    repo.commit("fine-tune")
    repo.git("push", "-q", "origin", "ft")
    return origin


@pytest.fixture
def ci(_origin: Path, tmp_path: Path) -> Repo:
    """What a CI job has: a fresh clone of the pull request's branch, no weights, no git-model config."""
    clone = Repo(tmp_path / "ci", make_env(tmp_path / "ci-home"))
    clone.run("git", "clone", "-q", "-b", "ft", str(_origin), str(clone.path), cwd=tmp_path)
    return clone


def test_script_writes_the_markdown_diff_of_the_branch(ci: Repo) -> None:
    ci.run("sh", SCRIPT)
    body = (ci.path / "model-diff.md").read_text()
    assert body == ci.gm("diff", "--markdown", "origin/main...HEAD").stdout
    assert body.startswith("## Model changes: `origin/main...HEAD (merge base)` -> `HEAD`")
    assert "### sent (modified)" in body
    assert "| loss | 0.3 | 0.2 | -0.1 ✅ better |" in body
    assert "| `layer1.weight` | changed | F32 [32, 32] | F32 [32, 32] |" in body
    assert sorted(p.name for p in ci.path.glob("model-diff.md*")) == ["model-diff.md"]


def test_script_posts_with_gh_when_asked(ci: Repo, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gh.log"
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncat "$5" >> {log}.body\n')
    gh.chmod(0o755)
    env = dict(ci.env, PATH=f"{bin_dir}{os.pathsep}{ci.env['PATH']}", POST="1", PR="7")
    from conftest import run

    run(["sh", SCRIPT, "origin/main", "comment.md"], ci.path, env)
    assert log.read_text() == "pr comment 7 --body-file comment.md --edit-last\n"
    assert Path(f"{log}.body").read_text() == (ci.path / "comment.md").read_text()
    missing_pr = run(["sh", SCRIPT], ci.path, dict(env, PR=""), check=False)
    assert missing_pr.returncode != 0 and "set PR to the pull request number" in missing_pr.stderr


def test_script_refuses_an_unknown_base_in_one_line(ci: Repo) -> None:
    cp = ci.run("sh", SCRIPT, "origin/nosuch", check=False)
    assert cp.returncode == 1
    assert cp.stderr.splitlines() == [
        "pr-diff: 'origin/nosuch' is not a commit in this clone; fetch it (git fetch origin main) or check out with "
        "fetch-depth: 0"
    ]
    assert not list(ci.path.glob("model-diff.md*"))


def test_workflow_runs_the_script_on_pull_requests() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert doc["permissions"]["pull-requests"] == "write"
    steps = doc["jobs"]["model-diff"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    post = steps[-1]
    assert post["run"].startswith("sh docs/ci/pr-diff.sh ")
    assert post["env"]["POST"] == "1" and "GH_TOKEN" in post["env"]
