"""The benchmark harness: interleaved timing, machine facts, `make bench`'s JSON and the README tables rendered from it."""

import json
import statistics
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import render_readme_tables  # noqa: E402
import run_all  # noqa: E402
import timing  # noqa: E402


class FakeClock:
    """A clock that advances by the next of `durations` between a start and a stop reading."""

    def __init__(self, durations):
        self.durations, self.now, self.reading = list(durations), 0.0, 0

    def __call__(self):
        if self.reading % 2:
            self.now += self.durations.pop(0)
        self.reading += 1
        return self.now


def test_interleaved_runs_candidates_alternately_after_a_warmup():
    calls = []
    candidates = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    durations = [1.0, 10.0, 3.0, 30.0, 2.0, 20.0, 5.0, 50.0, 4.0, 40.0]
    result = timing.interleaved(candidates, repeats=5, warmup=1, clock=FakeClock(durations))
    assert calls == ["a", "b"] + ["a", "b"] * 5
    assert result["a"]["times_s"] == durations[0::2] and result["b"]["times_s"] == durations[1::2]
    assert result["a"]["median_s"] == statistics.median(durations[0::2])
    assert (result["b"]["min_s"], result["b"]["max_s"]) == (10.0, 50.0)
    lower, _, upper = statistics.quantiles(durations[1::2], n=4, method="inclusive")
    assert result["b"]["iqr_s"] == pytest.approx(upper - lower)
    assert timing.speedup(result["b"], result["a"]) == pytest.approx(30.0 / 3.0)


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (5, -1)])
def test_interleaved_refuses_no_repeats(repeats, warmup):
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        timing.interleaved({"a": lambda: None}, repeats=repeats, warmup=warmup)


def test_scripts_refuse_fewer_than_five_repeats():
    import argparse

    parser = argparse.ArgumentParser()
    with pytest.raises(SystemExit):
        timing.positive_repeats(parser, 4)
    timing.positive_repeats(parser, 5)


@pytest.mark.parametrize("load, busy", [(0.9, False), (1.1, True)])
def test_machine_header_flags_a_busy_machine_and_warns(monkeypatch, capsys, load, busy):
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (load, 0.5, 0.5))
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 2)
    header = timing.machine_header()
    assert header["busy"] is busy and header["load_average_start"][0] == load and header["cores"] == 2
    assert set(header["cpu_flags"]) == set(timing.CPU_FLAGS)
    assert ("machine is busy" in capsys.readouterr().err) is busy
    report = timing.finish_report({"machine": header})
    assert len(report["machine"]["load_average_end"]) == 3


def test_readme_tables_equal_what_the_committed_json_renders():
    readme = (REPO / "README.md").read_text()
    assert render_readme_tables.render(readme) == readme, (
        "README.md's benchmark tables differ from bench/results/*.json: run bench/render_readme_tables.py")


def test_render_rewrites_only_between_markers_and_is_idempotent():
    stale = "".join(f"before {name}\n<!-- bench-table: {name} -->\nstale | 1.0x\n<!-- /bench-table: {name} -->\n"
                    for name in render_readme_tables.TABLES) + "after\n"
    rendered = render_readme_tables.render(stale)
    assert "stale" not in rendered and rendered.endswith("after\n")
    for name in render_readme_tables.TABLES:
        assert f"before {name}\n<!-- bench-table: {name} -->\n" in rendered
    assert render_readme_tables.render(rendered) == rendered


def test_render_refuses_unknown_and_missing_tables(tmp_path):
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        render_readme_tables.render("<!-- bench-table: nope -->\n<!-- /bench-table: nope -->\n")
    with pytest.raises(ValueError, match="has no markers for"):
        render_readme_tables.render("no tables here\n")
    only_one = "<!-- bench-table: nano-world-models -->\n<!-- /bench-table: nano-world-models -->\n"
    with pytest.raises(FileNotFoundError, match="nano_world_models.json is missing"):
        render_readme_tables.render(only_one, results_dir=tmp_path)


def test_run_all_writes_each_report_with_its_command_and_wall_time(tmp_path, monkeypatch):
    script = tmp_path / "fake_bench.py"
    script.write_text("import json, sys\nprint('log line')\nprint(json.dumps({'benchmark': 'fake', 'argv': sys.argv[1:]}))")
    failing = tmp_path / "failing_bench.py"
    failing.write_text("raise SystemExit(3)")
    monkeypatch.setattr(run_all, "BENCHES", {"fake": (str(script), ["--quick"]), "failing": (str(failing), [])})
    with pytest.raises(SystemExit, match="failing"):
        run_all.main(["--results", str(tmp_path / "results"), "--no-render"])
    report = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert report["argv"] == ["--quick"] and report["run_all"]["arguments"] == ["--quick"]
    assert report["run_all"]["wall_s"] >= 0
    assert not (tmp_path / "results" / "failing.json").exists()
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["fake.json"]  # no temporary files left


def test_memory_child_measures_its_own_peak_under_a_large_parent():
    """The tokenizer memory section runs each measurement in a child process; ru_maxrss would report the (larger)
    parent's peak there and every row read 0.0 MiB."""
    import subprocess

    import video_tokenizers

    parent_ballast = b"\x01" * (600 * 2**20)  # a parent larger than what the child allocates
    child = (video_tokenizers.PEAK_RSS_FUNCTION
             + "base = peak_rss_mib()\nblock = b'\\x01' * (100 * 2**20)\nprint(peak_rss_mib() - base)\n")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    del parent_ballast
    assert float(out.stdout) > 90
