"""promote, rollback, deprecate, stages --at: one holder per stage, history by date."""

from __future__ import annotations

from datetime import datetime, timezone

from conftest import Repo
from versions.conftest import as_json


def tag_three(repo: Repo) -> None:
    for version, rev in (("1.0.0", "HEAD~2"), ("1.1.0", "HEAD~1"), ("2.0.0", "HEAD")):
        repo.gm("tag", "sentiment", version, "--rev", rev)


def holders(repo: Repo, *extra: str) -> dict[str, str | None]:
    return {s["stage"]: s["version"] for s in as_json(repo, "stages", "sentiment", *extra)["stages"]}


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_promote_and_rollback_round_trip(three: Repo) -> None:
    repo = three
    tag_three(repo)
    assert repo.gm("promote", "sentiment@v1.0.0", "production", "-m", "first").stdout == "sentiment v1.0.0 now holds production\n"
    assert repo.gm("promote", "sentiment@v1.1.0", "production").stdout == "sentiment v1.1.0 now holds production (was v1.0.0)\n"
    repo.gm("promote", "sentiment@latest", "staging")
    assert holders(repo) == {"production": "1.1.0", "staging": "2.0.0"}
    assert repo.gm("rollback", "sentiment", "production").stdout == "sentiment v1.0.0 holds production again (was v1.1.0)\n"
    assert holders(repo) == {"production": "1.0.0", "staging": "2.0.0"}
    repo.gm("promote", "sentiment@v1.1.0", "production")
    assert holders(repo)["production"] == "1.1.0"
    assert repo.gm("show", "sentiment@production").stdout.splitlines()[0] == "sentiment v1.1.0"
    log = repo.gm("log", "sentiment").stdout.splitlines()
    assert [line.split("  ")[0] for line in log] == ["v2.0.0 [staging]", "v1.1.0 [production]", "v1.0.0"]


def test_rollback_twice_goes_back_two_promotions(three: Repo) -> None:
    repo = three
    tag_three(repo)
    for v in ("1.0.0", "1.1.0", "2.0.0"):
        repo.gm("promote", f"sentiment@v{v}", "production")
    repo.gm("rollback", "sentiment", "production")
    repo.gm("rollback", "sentiment", "production")
    assert holders(repo) == {"production": "1.0.0"}
    line = repo.gm_fails("rollback", "sentiment", "production")
    assert line == ("git model: error: sentiment@v1.0.0 is the first version to hold 'production'; "
                    "there is no earlier one to roll back to")


def test_stages_at_answers_across_three_promotions(three: Repo) -> None:
    repo = three
    tag_three(repo)
    before = utc_now()
    repo.gm("promote", "sentiment@v1.0.0", "production")
    t1 = utc_now()
    repo.gm("promote", "sentiment@v1.1.0", "production")
    t2 = utc_now()
    repo.gm("promote", "sentiment@v2.0.0", "production")
    t3 = utc_now()
    repo.gm("rollback", "sentiment", "production")
    assert holders(repo, "--at", before) == {"production": None}
    assert holders(repo, "--at", t1) == {"production": "1.0.0"}
    assert holders(repo, "--at", t2) == {"production": "1.1.0"}
    assert holders(repo, "--at", t3) == {"production": "2.0.0"}
    assert holders(repo) == {"production": "1.1.0"}
    assert repo.gm("stages", "sentiment", "--at", t1).stdout.startswith("production  v1.0.0  since ")
    # a date in another offset means the same instant
    local = datetime.strptime(t2, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).astimezone()
    assert holders(repo, "--at", local.isoformat()) == {"production": "1.1.0"}
    history = as_json(repo, "stages", "sentiment")["stages"][0]["history"]
    assert [(h["event"], h["version"], h["replaced"]) for h in history] == [
        ("promoted", "1.0.0", None), ("promoted", "1.1.0", "1.0.0"), ("promoted", "2.0.0", "1.1.0"),
        ("rolled-back", "1.1.0", "2.0.0")]


def test_deprecate_warns_on_checkout_and_blocks_promote(three: Repo) -> None:
    repo = three
    tag_three(repo)
    assert repo.gm("deprecate", "sentiment@v1.0.0", "-m", "data leak").stdout == "deprecated sentiment@v1.0.0\n"
    cp = repo.gm("checkout", "sentiment@v1.0.0", "-o", "out")
    assert cp.stderr == "git model: warning: sentiment@v1.0.0 is deprecated: data leak\n"
    line = repo.gm_fails("promote", "sentiment@v1.0.0", "production")
    assert line == "git model: error: sentiment@v1.0.0 is deprecated (data leak); promote another version"
    assert repo.gm_fails("deprecate", "sentiment@v1.0.0") == "git model: error: sentiment@v1.0.0 is deprecated already"
    (v1,) = [v for v in as_json(repo, "log", "sentiment")["versions"] if v["version"] == "1.0.0"]
    assert v1["deprecated"] == "data leak"
    assert "v1.0.0 (deprecated)" in repo.gm("log", "sentiment").stdout


def test_stage_refusals(three: Repo) -> None:
    repo = three
    tag_three(repo)
    repo.gm("promote", "sentiment@v1.0.0", "production")
    assert repo.gm_fails("promote", "sentiment@v1.0.0", "production") == \
        "git model: error: sentiment@v1.0.0 already holds the stage 'production'"
    for bad in ("latest", "beef", "v2", "9lives", "pro duction"):
        line = repo.gm_fails("promote", "sentiment@v1.1.0", bad)
        assert line.startswith(f"git model: error: '{bad}' "), line
        assert "stage name" in line
    head = repo.git("rev-parse", "HEAD~1").stdout.strip()
    repo.git("tag", "-d", "model/sentiment/v1.1.0", check=True)
    line = repo.gm_fails("promote", f"sentiment@{head[:10]}", "staging")
    assert line == (f"git model: error: sentiment@{head[:12]} is not a tagged version; tag it first "
                    "('git model tag sentiment --auto') and promote that")
    assert repo.gm_fails("rollback", "sentiment", "staging") == \
        "git model: error: no version of sentiment holds the stage 'staging'; nothing to roll back"
    assert repo.gm_fails("rollback", "nope", "production").startswith("git model: error: no model is named 'nope'; models: ")


def test_annotate_adds_metrics_to_log_and_show(three: Repo) -> None:
    repo = three
    tag_three(repo)
    assert repo.gm("annotate", "sentiment@v1.1.0", "--metric", "f1=0.87", "--metric", "n=100", "-m", "holdout").stdout \
        == "annotated sentiment@v1.1.0: f1=0.87 n=100\n"
    repo.gm("annotate", "sentiment@v1.1.0", "--metric", "f1=0.9")
    (v,) = [v for v in as_json(repo, "log", "sentiment")["versions"] if v["version"] == "1.1.0"]
    assert v["metrics"] == {"f1": 0.9, "n": 100}
    card = as_json(repo, "show", "sentiment@v1.1.0")
    assert card["metrics"] == {"f1": 0.9, "n": 100}
    assert [e["event"] for e in card["events"]] == ["tagged", "annotated", "annotated"]
    assert repo.gm_fails("annotate", "sentiment@v1.1.0", "--metric", "f1") == \
        "git model: error: 'f1' is not a metric: use NAME=NUMBER, such as f1=0.87"
    assert repo.gm_fails("annotate", "sentiment@v1.1.0", "--metric", "f1=nan") == \
        "git model: error: 'f1=nan' is not a metric: use NAME=NUMBER, such as f1=0.87"
    assert repo.gm_fails("annotate", "sentiment@v1.1.0") == \
        "git model: error: nothing to annotate: give --metric NAME=VALUE or -m MESSAGE"


def test_bad_date_is_one_line(three: Repo) -> None:
    tag_three(three)
    three.gm("promote", "sentiment@v1.0.0", "production")
    assert three.gm_fails("stages", "sentiment", "--at", "yesterday") == \
        "git model: error: 'yesterday' is not a date: use ISO 8601, such as 2026-11-02 or 2026-11-02T10:00Z"


def test_ls_lists_every_model(three: Repo) -> None:
    repo = three
    tag_three(repo)
    repo.gm("promote", "sentiment@v1.1.0", "production")
    (m,) = as_json(repo, "ls")["models"]
    assert (m["model"], m["latest"], m["versions"], m["stages"]) == ("sentiment", "2.0.0", 3, {"production": "1.1.0"})
    assert m["size"] == (repo.path / "models/sentiment/model.safetensors").stat().st_size
    line = repo.gm("ls").stdout
    assert line.split()[:2] == ["sentiment", "v2.0.0"] and line.rstrip().endswith("production=v1.1.0")


def test_promote_is_refused_by_a_stage_gate_until_an_annotation_meets_it(three: Repo) -> None:
    repo = three
    config = repo.path / ".gitmodel.toml"
    config.write_text(config.read_text() + '\n[stages.production]\ngates = ["metrics.accuracy >= 0.9"]\n')
    tag_three(repo)

    line = repo.gm_fails("promote", "sentiment@v1.1.0", "production")
    assert line == ("git model: error: sentiment@v1.1.0 cannot be promoted to 'production': metrics.accuracy is "
                    "missing; the production gate needs metrics.accuracy >= 0.9")
    repo.gm("promote", "sentiment@v1.1.0", "staging")  # no gate on staging

    repo.gm("annotate", "sentiment@v1.1.0", "--metric", "accuracy=0.85")
    line = repo.gm_fails("promote", "sentiment@v1.1.0", "production")
    assert "metrics.accuracy is 0.85; the production gate needs metrics.accuracy >= 0.9" in line

    repo.gm("annotate", "sentiment@v1.1.0", "--metric", "accuracy=0.93", "-m", "holdout re-run")
    repo.gm("promote", "sentiment@v1.1.0", "production")
    assert holders(repo) == {"production": "1.1.0", "staging": "1.1.0"}
