"""`git model audit`: events in order, --since, --json, and --verify catching dropped or rewritten history."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from conftest import Repo
from versions.conftest import MODEL, as_json


def events(repo: Repo, *args: str) -> list[dict]:
    return as_json(repo, "audit", *args)["events"]


def note_of(repo: Repo, rev: str) -> str:
    return repo.git("notes", "--ref=model", "show", rev).stdout


def set_note(repo: Repo, rev: str, text: str) -> None:
    repo.git("notes", "--ref=model", "add", "-f", "-m", text.rstrip("\n"), rev)


def test_add_records_an_event_with_the_file_digests(three: Repo) -> None:
    evs = events(three)
    assert [e["event"] for e in evs] == ["added"] * 3
    digest = three.pointer(MODEL).split('digest = "', 1)[1].split('"', 1)[0]
    last = evs[-1]
    assert (last["model"], last["pointer"], last["digests"]) == ("sentiment", MODEL + ".model.toml", {MODEL: digest})
    assert last["by"] == "Test Author <author@example.com>"
    assert evs[0]["prev"] == [] and evs[1]["prev"] == [evs[0]["id"]] and evs[2]["prev"] == [evs[1]["id"]]
    # adding an unchanged model records nothing
    three.gm("add", "-q", MODEL)
    assert len(events(three)) == 3


def test_events_in_order_with_since_and_name(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    mid = datetime.now(timezone.utc).isoformat()
    repo.gm("promote", "sentiment@v1.0.0", "production", "-m", "ship it")
    evs = events(repo)
    assert [e["event"] for e in evs] == ["added", "added", "added", "tagged", "promoted"]
    assert [e["at"] for e in evs] == sorted(e["at"] for e in evs)
    assert [e["event"] for e in events(repo, "--since", mid)] == ["promoted"]
    lines = repo.gm("audit", "sentiment", "--since", mid).stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith('Test Author <author@example.com>  promoted  sentiment v1.0.0 -> production  "ship it"')
    assert repo.gm_fails("audit", "nope").startswith("git model: error: no model is named 'nope'")
    line = json.dumps(evs[-1])
    assert '"stage": "production"' in line and '"id": "sha256:' in line


def test_notes_hold_one_sorted_json_line_per_event(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0")
    repo.gm("promote", "sentiment@v1.0.0", "production")
    note = note_of(repo, "HEAD")
    lines = note.splitlines()
    assert note.endswith("\n") and lines == sorted(lines)
    assert all(line.startswith('{"at":"') for line in lines)
    assert repo.git("log", "--format=%s", "-3", "refs/notes/model").stdout.splitlines() == [
        "git model: promoted sentiment v1.0.0 -> production", "git model: tagged sentiment v1.0.0",
        "git model: added sentiment"]
    assert [json.loads(line)["event"] for line in lines] == ["tagged", "promoted"]
    # an add is attached to the commit HEAD was on when the pointer was staged
    assert [json.loads(line)["event"] for line in note_of(repo, "HEAD~1").splitlines()] == ["added"]


def test_verify_passes_then_catches_a_dropped_event(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("promote", "sentiment@v1.0.0", "production")
    repo.gm("annotate", "sentiment@v1.0.0", "--metric", "f1=0.5")
    assert repo.gm("audit", "--verify").stdout == "ok: 6 event(s) verified\n"
    note = note_of(repo, "HEAD~2")
    kept = [line for line in note.splitlines() if '"event":"promoted"' not in line]
    set_note(repo, "HEAD~2", "\n".join(kept))
    cp = repo.gm("audit", "--verify", check=False)
    assert cp.returncode == 1
    assert cp.stdout.startswith("BAD  sentiment: annotated v1.0.0 at ")
    line = cp.stderr.strip()
    assert line.startswith("git model: error: audit history fails verification: 1 problem(s); first: sentiment: annotated v1.0.0 at ")
    assert line.endswith("that is not in the history: an event was dropped or rewritten")
    assert len(cp.stderr.splitlines()) == 1


def test_verify_catches_a_rewritten_event(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("promote", "sentiment@v1.0.0", "production", "-m", "approved by QA")
    repo.gm("promote", "sentiment@v1.0.0", "staging")
    set_note(repo, "HEAD~2", note_of(repo, "HEAD~2").replace("approved by QA", "approved by CEO"))
    line = repo.gm_fails("audit", "--verify")
    assert "first: sentiment: promoted v1.0.0 at " in line and "an event was dropped or rewritten" in line


def test_verify_catches_a_dropped_first_event_made_to_look_like_a_root(three: Repo) -> None:
    repo = three
    note = note_of(repo, "HEAD~1")
    doc = json.loads(note.splitlines()[0])
    doc["prev"] = []
    set_note(repo, "HEAD~1", json.dumps(doc, sort_keys=True, separators=(",", ":")))
    line = repo.gm_fails("audit", "--verify")
    assert "names no previous event but is not the model's first" in line


def test_verify_catches_a_version_tag_without_its_event(three: Repo) -> None:
    three.git("tag", "-a", "-m", "by hand", "model/sentiment/v3.0.0")
    line = three.gm_fails("audit", "sentiment", "--verify")
    assert line == ("git model: error: audit history fails verification: 1 problem(s); first: sentiment: "
                    "model/sentiment/v3.0.0: has no 'tagged' event: the tag was made outside git model, or its event was dropped")
    assert three.gm("show", "sentiment@v3.0.0").stdout.splitlines()[0] == "sentiment v3.0.0"  # still a version


def test_a_broken_or_newer_event_is_one_line(three: Repo) -> None:
    repo = three
    set_note(repo, "HEAD", '{"v":2,"at":"2030-01-01T00:00:00.000000Z"}\n')
    assert repo.gm_fails("audit").endswith("holds an audit event of format 2; it needs a newer git-model: pip install -U git-model")
    set_note(repo, "HEAD", "not json at all")
    assert repo.gm_fails("log", "sentiment").startswith("git model: error: refs/notes/model (note on ")


def _ssh_signing(repo: Repo) -> str:
    key = repo.path.parent / "signing_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(key)], check=True)
    public = (key.parent / "signing_key.pub").read_text().strip()
    allowed = repo.path.parent / "allowed_signers"
    allowed.write_text(f"committer@example.com {public}\nauthor@example.com {public}\n")
    for k, v in (("gpg.format", "ssh"), ("user.signingKey", str(key)), ("tag.gpgSign", "true"),
                 ("gpg.ssh.allowedSignersFile", str(allowed))):
        repo.git("config", k, v)
    return str(allowed)


@pytest.mark.skipif(subprocess.run(["which", "ssh-keygen"], capture_output=True).returncode != 0, reason="no ssh-keygen")
def test_tags_are_signed_when_the_user_signs_and_verify_checks_them(three: Repo) -> None:
    repo = three
    allowed = _ssh_signing(repo)
    repo.gm("tag", "sentiment", "1.0.0")
    raw = repo.git("cat-file", "-p", "model/sentiment/v1.0.0").stdout
    assert "-----BEGIN SSH SIGNATURE-----" in raw and "pointer: " in raw
    assert repo.gm("log", "sentiment").stdout.startswith("v1.0.0  ")  # the card is still read
    # a promotion is signed too: the notes commit that records it
    repo.gm("promote", "sentiment@v1.0.0", "production")
    notes_commit = repo.git("cat-file", "-p", "refs/notes/model").stdout
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in notes_commit
    assert "git model: promoted sentiment v1.0.0 -> production" in notes_commit
    repo.git("verify-commit", "refs/notes/model")
    repo.gm("annotate", "sentiment@v1.0.0", "-m", "not a decision: not signed")
    assert "gpgsig" not in repo.git("cat-file", "-p", "refs/notes/model").stdout
    assert repo.gm("audit", "--verify").stdout.startswith("ok: ")
    # a key nobody trusts any more: the signatures no longer verify
    with open(allowed, "w") as f:
        f.write("")
    cp = repo.gm("audit", "--verify", check=False)
    assert cp.returncode == 1
    bad = [line for line in cp.stdout.splitlines() if line.startswith("BAD  ")]
    assert len(bad) == 2
    assert any("model/sentiment/v1.0.0: bad signature: " in line for line in bad)
    assert any(line.startswith("BAD  sentiment: promoted v1.0.0 at ") and "bad signature" in line for line in bad)


def test_the_events_cache_follows_the_notes_and_verify_ignores_it(three: Repo) -> None:
    repo = three
    repo.gm("tag", "sentiment", "1.0.0", "--rev", "HEAD~2")
    repo.gm("promote", "sentiment@v1.0.0", "production", "-m", "real")
    cache = repo.path / ".git" / "model-events.cache"
    doc = json.loads(cache.read_text())
    assert doc["notes"] == repo.git("rev-parse", "refs/notes/model").stdout.strip()
    assert [json.loads(line)["event"] for line in doc["lines"]] == [e["event"] for e in events(repo)]
    # notes changed behind git-model's back: the cache is stale and not used
    repo.git("notes", "--ref=model", "append", "-m", ev_line(repo), "HEAD~1")
    assert [e.get("reason") for e in events(repo)][-1] == "by hand"
    # a cache edited to lie is shown by audit, but --verify reads the notes themselves
    doc = json.loads(cache.read_text())
    doc["lines"] = [line.replace('"reason":"real"', '"reason":"fake"') for line in doc["lines"]]
    cache.write_text(json.dumps(doc))
    assert "fake" in repo.gm("audit").stdout
    assert repo.gm("audit", "--verify").stdout.startswith("ok: ")
    cache.write_text("garbage")
    assert "real" in repo.gm("audit").stdout


def ev_line(repo: Repo) -> str:
    last = events(repo)[-1]
    line = {k: v for k, v in last.items() if k != "id"}
    line.update(at="2030-01-01T00:00:00.000000Z", prev=[last["id"]], reason="by hand", event="annotated")
    line.pop("stage", None)
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def test_the_events_cache_is_written_without_fsync_and_a_short_one_is_not_used(
    three: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from gitmodel import audit
    from gitmodel.gitrepo import GitRepo

    git = GitRepo(three.path)
    tip = git.ref_target(audit.NOTES_REF)
    assert tip is not None
    history = audit._read(git, use_cache=False)
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    audit._save_cache(git, tip, history)
    assert synced == []  # a cache: losing it costs a re-read of the notes
    cache = git.git_dir / audit.CACHE_NAME
    whole = cache.read_bytes()
    assert [e.line for e in audit._load_cache(git, tip).events] == [e.line for e in history.events]  # type: ignore[union-attr]
    for cut in range(0, len(whole), max(1, len(whole) // 50)):  # what a crash may leave after the rename
        cache.write_bytes(whole[:cut])
        assert audit._load_cache(git, tip) is None
