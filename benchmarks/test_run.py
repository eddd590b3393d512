"""Tests of run.py's pairing, ordering, page-cache settling and report (run with `pytest benchmarks/`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import generate as g
from benchmarks import run


def step(seconds: float, cpu: float = 0.1) -> run.Step:
    return run.Step(seconds, 10 * 1024, [("git model add", 10 * 1024)], cpu)


def tool(name: str, pairs_new: list[tuple[float, float]], pairs_ft: list[tuple[float, float]],
         pairs_checkout: list[tuple[float, float]]) -> run.ToolResult:
    res = run.ToolResult(name)
    res.add = [[run.Pair(step(c), step(t)) for c, t in pairs_new], *[[run.Pair(step(c), step(t))] for c, t in pairs_ft]]
    res.checkout = [run.Pair(step(c), step(t)) for c, t in pairs_checkout]
    res.growth = [100] + [1] * len(pairs_ft)
    res.growth_metadata = [0] * (1 + len(pairs_ft))
    return res


def test_a_ratio_is_the_median_of_per_pair_ratios_and_the_paired_cp_range_is_shown() -> None:
    spec = g.make_series(size_mib=0.25, versions=3, seed=3, n_layers=6)
    # The disk slows after the first pair: cp 1 s, then 4 s and 4 s. Every step of the raw store
    # takes 1.1x the cp just before it; dividing its median (4.4 s) by one early cp (1 s) would
    # say 4.4x, by the median of all cps (4 s) 1.1x only by luck of the medians.
    raw = tool("git model raw", [(1.0, 1.1), (4.0, 4.4), (4.0, 4.4)], [(1.0, 0.2), (4.0, 0.8)], [(1.0, 1.3), (4.0, 5.2), (1.0, 1.3)])
    lfs = tool("git lfs", [(1.0, 9.0), (1.0, 9.0), (1.0, 9.0)], [(1.0, 9.0), (1.0, 9.0)], [(1.0, 5.0), (1.0, 5.0), (1.0, 5.0)])
    copies = run.CpCopies([100, 100, 100], [100, 100, 100])
    rep = run.build_report(lfs, [raw], copies, spec, 1, ["env"], 11 * 1024, "evict")
    verdicts = {name: got for name, _, got, _ in rep.verdicts}
    assert verdicts["add+commit new checkpoint (issue 15, raw)"] == "1.10x"
    assert verdicts["add+commit fine-tune (issue 15, raw)"] == "0.20x"
    assert verdicts["checkout older version (issue 15, raw)"] == "1.30x"
    rows = {label: (cells, ratios) for label, cells, ratios in rep.rows}
    cells, ratios = rows["add+commit v0 (new checkpoint), median of 3"]
    assert cells == ["1.00 s", "9.00 s", "4.40 s"]  # cp column: median of all six paired cps
    assert ratios == ["1.10x", "9.00x"]
    paired = [r for r in rep.rows if r[0].startswith("paired cp")]
    assert [r[1] for r in paired][0] == ["1.00-4.00 s", "1.00-1.00 s", "1.00-4.00 s"]
    text = run.render_text(rep)
    assert "paired cp + sync of that step, min-max" in text and "median of its per-pair ratios" in text
    assert "| cp s (paired, median) | cp s min-max |" in run.render_markdown(rep).replace("  ", " ")


def test_tools_take_turns_so_each_holds_each_place_once_in_as_many_rounds() -> None:
    tools = ["lfs", "raw", "compressed"]
    orders = [run.rotate(tools, k) for k in range(3)]
    assert orders[0] == tools
    for place in range(3):
        assert sorted(o[place] for o in orders) == sorted(tools)
    assert run.rotate(tools, 4) == orders[1]


def resident_pages(path: Path) -> int:
    """Pages of `path` in the page cache, from util-linux's fincore."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "PAGES", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux fincore to see the page cache")
def test_evict_leaves_only_the_steps_input_in_the_page_cache(tmp_path: Path) -> None:
    if run.filesystem_of(tmp_path).startswith("tmpfs"):
        pytest.skip("tmpfs pages cannot be evicted")
    other, model = tmp_path / "repo" / "pack", tmp_path / "model.safetensors"
    other.parent.mkdir()
    for p in (other, model):
        p.write_bytes(os.urandom(1 << 20))
    os.sync()
    run.read_through(other)
    assert resident_pages(other) > 0
    cache = run.PageCache("evict", tmp_path)
    cache.settle([model])
    assert resident_pages(other) == 0
    assert resident_pages(model) == (1 << 20) // os.sysconf("SC_PAGE_SIZE")
    run.PageCache("warm", tmp_path).settle([other])  # warm: nothing evicted, the input read
    assert resident_pages(model) > 0 and resident_pages(other) > 0


def test_cache_drop_is_refused_with_one_line_where_it_is_not_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(run, "DROP_CACHES", tmp_path / "no-such-dir" / "drop_caches")
    with pytest.raises(SystemExit) as e:
        run.main(["--cache", "drop", "--size-mib", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--cache drop: cannot write " + str(tmp_path / "no-such-dir" / "drop_caches")
                            + " (No such file or directory); use --cache evict")


@pytest.mark.skipif(shutil.which("git-lfs") is None or shutil.which("git-model") is None, reason="needs git-lfs and git-model")
def test_a_small_run_pairs_every_timed_step_with_a_cp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.json"
    assert run.main(["--size-mib", "1", "--versions", "3", "--repeat", "2", "--compression", "off", "--no-insert",
                     "--workdir", str(tmp_path), "--json", str(out)]) == 0
    record = json.loads(out.read_text())["sizes"]["1"]
    assert set(record["tools"]) == {"git lfs", "git model raw"}
    for t in record["tools"].values():
        assert [len(v) for v in t["add"]] == [2, 1, 1]  # v0 --repeat times, each fine-tune once
        assert len(t["checkout"]) == 2
        for pair in [*(p for v in t["add"] for p in v), *t["checkout"]]:
            assert pair["cp"]["seconds"] > 0 and pair["tool"]["seconds"] > 0
            assert pair["cp"]["rss_by_command"][0][0].startswith("cp --reflink=never")
    assert record["cp_copies"]["apparent"] == [record["series"]["file_bytes"]] * 3
    assert record["cache"] == "evict"
    text = capsys.readouterr().out
    assert "paired cp + sync of that step, min-max" in text
    assert list(tmp_path.iterdir()) == [out]  # the work directory is removed
