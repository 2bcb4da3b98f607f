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


def test_readme_and_model_cards_equal_what_the_committed_json_renders():
    """README.md and pipelines/*/README.md; a marker whose JSON is not committed fails with the command to run."""
    for path in render_readme_tables.documents():
        text = path.read_text()
        assert render_readme_tables.render(text, document=render_readme_tables.display(path)) == text, (
            f"{path}'s benchmark tables differ from bench/results/*.json: run bench/render_readme_tables.py")


def test_every_table_has_a_marker_and_its_json_comes_from_make_bench():
    texts = {path: path.read_text() for path in render_readme_tables.documents()}
    shown = set().union(*map(render_readme_tables.tables_in, texts.values()))
    assert shown == set(render_readme_tables.TABLES)
    assert "ar-medusa-nano" in render_readme_tables.tables_in(
        (REPO / "pipelines" / "cosmos-nano-ar-video2world" / "README.md").read_text())
    needed = {name for files, _ in render_readme_tables.TABLES.values() for name in files}
    assert needed <= set(run_all.BENCHES), f"`make bench` never writes {needed - set(run_all.BENCHES)}"
    for script, arguments in run_all.BENCHES.values():
        assert (REPO / "bench" / script).is_file()
        for argument in arguments:  # model folders the quick settings name must be in the repository
            if argument.startswith("pipelines/"):
                assert (REPO / argument).exists(), argument


def committed_tables():
    """The tables whose JSON files are in bench/results (the others wait for `make bench` on an idle machine)."""
    return [name for name, (files, _) in render_readme_tables.TABLES.items()
            if all((render_readme_tables.RESULTS / f"{file}.json").is_file() for file in files)]


def test_render_rewrites_only_between_markers_and_is_idempotent():
    names = committed_tables()
    assert names, "no table has its JSON committed"
    stale = "".join(f"before {name}\n<!-- bench-table: {name} -->\nstale | 1.0x\n<!-- /bench-table: {name} -->\n"
                    for name in names) + "after\n"
    rendered = render_readme_tables.render(stale)
    assert "stale" not in rendered and rendered.endswith("after\n")
    for name in names:
        assert f"before {name}\n<!-- bench-table: {name} -->\n" in rendered
    assert render_readme_tables.render(rendered) == rendered


def test_render_refuses_unknown_tables_and_tables_shown_nowhere(tmp_path):
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        render_readme_tables.render("<!-- bench-table: nope -->\n<!-- /bench-table: nope -->\n")
    with pytest.raises(ValueError, match="no markers for"):
        render_readme_tables.render_documents({"README.md": "no tables here\n"})
    # a table may live in a model card only: together the documents show every table
    cards = {f"card_{i}.md": f"<!-- bench-table: {name} -->\n<!-- /bench-table: {name} -->\n"
             for i, name in enumerate(render_readme_tables.TABLES)}
    with pytest.raises(ValueError, match=r"no markers for \['sim-throughput'\]"):
        render_readme_tables.render_documents({k: v for k, v in cards.items() if "sim-throughput" not in v}, tmp_path)


def test_a_marker_without_its_json_fails_naming_the_document_and_the_command(tmp_path):
    two = "".join(f"text\n<!-- bench-table: {name} -->\n<!-- /bench-table: {name} -->\n"
                  for name in ("sim-throughput", "curation", "curation-split-memory"))
    with pytest.raises(FileNotFoundError) as error:
        render_readme_tables.render(two, results_dir=tmp_path, document="card.md")
    message = str(error.value)
    assert message.startswith("card.md: tables ['curation', 'curation-split-memory', 'sim-throughput'] cannot be "
                              "rendered, their JSON is missing: ")
    assert "curation.json, " in message and message.count("curation.json") == 1 and "sim.json" in message
    assert "(run `.venv/bin/python bench/run_all.py --only curation sim` on an idle machine" in message
    assert render_readme_tables.render("no marker, no JSON needed\n", results_dir=tmp_path) == \
        "no marker, no JSON needed\n"
    card = tmp_path / "README.md"
    card.write_text(two)
    with pytest.raises(SystemExit, match="sim.json"):
        render_readme_tables.main(["--check", "--documents", str(card), "--results", str(tmp_path)])
    with pytest.raises(SystemExit, match="sim.json"):
        render_readme_tables.main(["--documents", str(card), "--results", str(tmp_path)])
    assert card.read_text() == two



def test_render_main_given_a_document_twice_rewrites_each_file_with_its_own_tables(tmp_path, monkeypatch):
    # `--documents notes.md ./notes.md card.md` zipped 2 documents with 3 paths: card.md's tables went into notes.md
    (tmp_path / "sim.json").write_text(json.dumps(synthetic_reports()["sim"]))
    notes, card = tmp_path / "notes.md", tmp_path / "card.md"
    notes.write_text("my notes, no tables\n")
    card.write_text("<!-- bench-table: sim-throughput -->\nstale\n<!-- /bench-table: sim-throughput -->\n")
    monkeypatch.chdir(tmp_path)
    render_readme_tables.main(["--documents", "notes.md", "./notes.md", "card.md", "--results", str(tmp_path)])
    assert notes.read_text() == "my notes, no tables\n"
    assert "stale" not in card.read_text() and "| physics |" in card.read_text()

def timing_summary(median, low=None, high=None):
    low, high = low or median, high or median
    return {"median_s": median, "min_s": low, "max_s": high, "iqr_s": 0.0, "repeats": 5, "times_s": [median] * 5}


MACHINE = {"cpu_model": "Test CPU", "cores": 2, "torch_threads": 1, "load_average_start": [0.1, 0.1, 0.1],
           "busy": False, "cpu_flags": {"avx2": True}}


def synthetic_reports():
    """Small reports shaped like the scripts' JSON (what each renderer reads, nothing more)."""
    medusa_row = {"prompts": 2, "tokens_per_s_plain": 100.0, "medusa_generate_kwargs": {}, "identical_to_greedy": True,
                  "tokens_per_forward": 4.92, "tokens_fed_per_forward": 5.0, "tokens_per_s": 293.0,
                  "wall_time_speedup": 2.93}
    camera_row = {"sampson_error_px": 0.1015, "pose_success_pairs": 1.0, "mean_matches": 341.9,
                  "rotation_error_deg": 0.097, "translation_error": 0.0059, "cpu_s": 0.68}
    return {
        "autoregressive": {
            "command": "bench/autoregressive.py --quick", "machine": MACHINE, "repeats": 5,
            "model": {"hidden_size": 128, "num_hidden_layers": 2, "parameters_M": 1.23},
            "kv_cache": {"new_tokens": 48, "speedup": 5.2, "same_tokens": True,
                         "max_abs_logit_diff_cached_vs_full": 2e-6,
                         "timings": {"cache": timing_summary(0.1), "no_cache": timing_summary(0.52)}},
            "bf16_prefill": {"tokens": 1024, "speedup": 0.17, "argmax_agreement": 0.9912,
                             "timings": {"fp32": timing_summary(0.01), "bf16": timing_summary(0.0588)}},
            "medusa": {"heads": 4, "distillation_steps": 60, "final_medusa_loss": 1.5, "distilled_prompts": medusa_row,
                       "held_out_prompts": {**medusa_row, "tokens_per_forward": 1.02, "wall_time_speedup": 0.61,
                                            "identical_to_greedy": False}},
            "long_context_decoding": {
                "model": {"hidden_size": 128, "num_hidden_layers": 2},
                "context_2048": {"tokens_per_s_cache": 69.7, "tokens_per_s_no_cache": 0.74, "speedup": 94.1,
                                 "same_tokens": True, "kv_cache_MB_measured": 8.12, "kv_cache_MB_formula_fp32": 8.12},
                "context_512": {"tokens_per_s_cache": 122.8, "tokens_per_s_no_cache": 5.49, "speedup": 22.4,
                                "same_tokens": True, "kv_cache_MB_measured": 2.12, "kv_cache_MB_formula_fp32": 2.12},
                "released_4B_full_grid_kv_cache_GB_bf16": 0.781},
            "decoding_cache_comparison": {
                "model": "/somewhere/pipelines/cosmos-nano-ar-video2world/ar_model", "prompt_tokens": 65,
                "new_tokens": 256, "threads": 1, "repeats": 5, "compile_mode": "default",
                "compile_and_first_run_s": 61.5,
                **{name: {"tokens_per_s_median": speed, "tokens_per_s_range": [speed - 1, speed + 1],
                          "speedup_vs_dynamic_eager": ratio, "same_tokens_as_dynamic": True}
                   for name, speed, ratio in (("dynamic_cache_eager", 130.0, 1.0), ("static_cache_eager", 110.0, 0.85),
                                              ("static_cache_compiled", 260.0, 2.0))}}},
        "ar_medusa_nano": {
            "command": "bench/autoregressive.py --skip_random --model pipelines/cosmos-nano-ar-video2world/ar_model",
            "machine": MACHINE, "repeats": 5,
            "trained_model_medusa": {"model": "pipelines/cosmos-nano-ar-video2world/ar_model", "prompt_tokens": 64,
                                     "prompt_source": "held-out simulator clips",
                                     "new_tokens": 256, "heads": 4, "threads": 1, "prompts": 4,
                                     "tokens_per_s_plain": 128.2,
                                     "heads_chain": {**medusa_row, "tokens_per_forward": 3.44, "tokens_per_s": 320.9,
                                                     "wall_time_speedup": 2.5},
                                     "new_tree": {**medusa_row, "medusa_generate_kwargs": {"head_top_k": 3},
                                                  "identical_to_greedy": False}}},
        "sim": {"command": "bench/sim.py", "machine": MACHINE, "clips": 8, "frames": 16, "repeats": 5,
                **{f"{task}_{size}x{size}": {"fps": fps, "cpu_fps": fps + 1, "images_per_s": fps * images}
                   for task, images in (("physics", 1), ("push", 1), ("camera", 1), ("multiview", 6))
                   for size, fps in ((64, 174.0), (128, 67.0))},
                "generate_physics_64x64_serial": {"fps": 125.0, "cpu_fps": 126.0}},
        "evaluation": {"command": "bench/evaluation.py", "machine": MACHINE,
                       "synthetic": {"room_orbit_240x320": camera_row},
                       "sim": {"pan_256": {**camera_row, "translation_error": None, "pose_success_pairs": 0.0}},
                       "cpu_s_per_frame": {"psnr_256": 0.00091, "ssim_256": 0.01382}},
        "guardrails": {
            "command": "bench/guardrails.py", "machine": MACHINE, "repeats": 5,
            "redteam": {"tuning": {"num_safe": 346, "num_unsafe": 374, "false_positives": 8, "false_negatives": 15,
                                   "missed_by_kind": {"semantic": "15/16"}},
                        "heldout": {"num_safe": 160, "num_unsafe": 145, "false_positives": 2, "false_negatives": 17,
                                    "missed_by_kind": {"joined": "2/8"}}},
            "blocklist": {"num_prompts": 1025, "prompts_per_s": 452.0, "prompts_per_s_without_fuzzy": 904.0,
                          "fuzzy_cost_ratio": 2.0,
                          "timings": {"full": timing_summary(2.27), "without_fuzzy": timing_summary(1.13)}},
            "face_pixelation_haar": {"256x256": {"frames_per_s_frontal": 250.0,
                                                 "frames_per_s_frontal_and_profile": 50.0,
                                                 "timings": {"frontal": timing_summary(0.016),
                                                             "both": timing_summary(0.08)}}}},
        "curation": {
            "command": "bench/curation.py --videos 4", "machine": MACHINE, "videos": 4, "shots_per_video": 3,
            "size": 64, "cpus": 2, "repeats": 5,
            "local": {"clips": 12, "seconds": 2.35, "clips_per_second": 5.1, "actor_startup_seconds": 0.0,
                      "clips_per_second_after_startup": 5.1},
            "shotbench": {"content (PySceneDetect adaptive)": {"precision": 1.0, "recall": 0.889, "f1": 0.941,
                                                               "tp": 16, "fp": 0, "fn": 2}},
            "split_memory": {"frames": 960, "size": 256, "memory_ratio_whole_vs_streaming": 32.6,
                             "whole_video": {"peak_mb": 185.7, "seconds": 3.2, "transitions": 9},
                             "streaming": {"peak_mb": 5.7, "seconds": 3.0, "transitions": 9}}},
    }


def rendered_table(name, reports):
    files, renderer = render_readme_tables.TABLES[name]
    return renderer({file: reports[file] for file in files})


def row_of(table, first_cell):
    """The markdown row of `table` whose first cell is `first_cell`, as a list of cells."""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{table}")


def test_every_table_renders_a_synthetic_report_starting_with_its_provenance(tmp_path):
    reports = synthetic_reports()
    for name, (files, _) in render_readme_tables.TABLES.items():
        if all(file in reports for file in files):
            table = rendered_table(name, reports)
            assert table.startswith(f"`.venv/bin/python {reports[files[0]]['command']}`, 1 thread, Test CPU")
            assert "idle machine" in table.splitlines()[0]
    for file, report in reports.items():  # the same through files and markers, as `make bench` renders them
        (tmp_path / f"{file}.json").write_text(json.dumps(report))
    document = "".join(f"<!-- bench-table: {name} -->\n<!-- /bench-table: {name} -->\n"
                       for name, (files, _) in render_readme_tables.TABLES.items() if set(files) <= set(reports))
    rendered = render_readme_tables.render(document, results_dir=tmp_path)
    assert rendered.count("`.venv/bin/python bench/") == len(render_readme_tables.tables_in(document)) == 10


def test_autoregressive_tables_show_ratios_spreads_and_token_equality():
    reports = synthetic_reports()
    random_model = rendered_table("ar-random-model", reports)
    assert "2 layers of width 128 (1.23M parameters)" in random_model
    kv = row_of(random_model, "KV cache vs recomputing the prefix (`generate`, 48 new tokens)")
    assert kv[1:] == ["0.520 (0.520-0.520)", "0.100 (0.100-0.100)", "5.20x", "yes (same tokens)"]
    assert row_of(random_model, "bf16 vs fp32 prefill (1024 tokens)")[3:] == [
        "0.17x", "argmax agrees on 99.1% of tokens"]
    assert row_of(random_model, "2 the heads were distilled on")[1:] == ["4.92", "100.0", "293.0", "2.93x", "yes"]
    assert row_of(random_model, "2 unseen")[1:] == ["1.02", "100.0", "293.0", "0.61x", "**no**"]

    long_context = rendered_table("ar-long-context", reports)
    rows = [line for line in long_context.splitlines() if line.startswith("| 512") or line.startswith("| 2048")]
    assert rows[0].startswith("| 512 |") and rows[1].startswith("| 2048 |")  # sorted by context, not by key order
    assert row_of(long_context, "2048")[1:] == ["69.7", "0.74", "94.1x", "yes", "8.12", "8.12"]
    assert "0.781 GiB" in long_context

    static = rendered_table("ar-static-cache", reports)
    assert "`pipelines/cosmos-nano-ar-video2world/ar_model`" in static and "/somewhere" not in static
    assert row_of(static, "static cache + compiled one-token step")[1:] == ["260.0 (259.0-261.0)", "2.00x", "yes"]

    medusa = rendered_table("ar-medusa-nano", reports)
    assert "vs plain greedy (128.2 tokens/s)" in medusa
    assert "4 prompts of 64 tokens from held-out simulator clips" in medusa
    assert row_of(medusa, "the heads' top-1 chain (the paper's Medusa)")[1:] == ["3.44", "5.0", "320.9", "2.50x", "yes"]
    assert row_of(medusa, "`new_tree` (`{'head_top_k': 3}`)")[-1] == "**no**"  # an unknown tree keeps its name


def test_sim_evaluation_guardrails_and_curation_tables():
    reports = synthetic_reports()
    sim = rendered_table("sim-throughput", reports)
    assert "8 clips of 16 frames" in sim
    assert row_of(sim, "physics")[1:] == ["174.0", "175.0", "67.0", "68.0"]
    assert row_of(sim, "multiview (6 cameras; a frame holds all of them)")[1] == "174.0"

    evaluation = rendered_table("evaluation-calibration", reports)
    assert row_of(evaluation, "synthetic textured room, 8-frame arc, 240×320")[1:] == [
        "0.10", "1.00", "0.097", "0.0059", "342", "0.68"]
    assert row_of(evaluation, "sim `simulate_camera` pan, 256×256")[4] == "—"
    assert "CPU time per 256×256 frame: PSNR 0.91 ms, SSIM 13.82 ms" in evaluation

    redteam = rendered_table("guardrails-redteam", reports)
    assert row_of(redteam, "")[1:] == ["held-out (305: 160 safe, 145 unsafe)",
                                       "tuning (720: 346 safe, 374 unsafe), in-sample"]
    assert row_of(redteam, "false negatives (unsafe prompts passed)")[1:] == ["17 / 145 (11.7 %)", "15 / 374 (4.0 %)"]
    semantic = row_of(redteam, "of these, prompts with no listed word (\"semantic\": the LLM classifier's job)")
    assert semantic[1:] == ["none missed", "15 / 16 missed"]
    costs = rendered_table("guardrails-costs", reports)
    assert row_of(costs, "blocklist, every reading")[1:] == ["the 1025 red-team prompts", "2.27 (2.27-2.27)",
                                                             "452.0 prompts/s"]
    assert row_of(costs, "Haar face pixelation, frontal cascade")[1] == "4 frames 256x256"

    curation = rendered_table("curation", reports)
    assert row_of(curation, "content (PySceneDetect adaptive)")[1:] == ["1.000", "0.889", "0.941", "16 / 0 / 2"]
    assert row_of(curation, "in-process (`LocalExecutor`)")[1:] == ["12", "2.35", "5.10", "0.00", "5.10"]
    assert "Ray" not in curation and "actors per stage:" not in curation  # no Ray: no Ray rows, no ratio
    reports["curation"].update(ray_2_workers={**reports["curation"]["local"], "clips_per_second": 10.6},
                               speedup_2_vs_1_workers=1.04, speedup_2_vs_1_workers_after_startup=1.05)
    curation = rendered_table("curation", reports)
    assert row_of(curation, "Ray, 2 actors per stage")[3] == "10.60"
    assert "2 vs 1 actors per stage: 1.04x in wall time, 1.05x after actor start-up." in curation
    memory = rendered_table("curation-split-memory", reports)
    assert "one 960-frame 256x256 video" in memory and "32.6x the memory" in memory
    assert row_of(memory, "`SplitStage`: decoded frames streamed into the detector")[1:] == ["5.7", "3.00", "9"]


def test_run_all_writes_each_report_with_its_command_and_wall_time(tmp_path, monkeypatch):
    script = tmp_path / "fake_bench.py"
    script.write_text("import json, sys\nprint('log line')\nprint(json.dumps({'benchmark': 'fake', 'argv': sys.argv[1:]}))")
    failing = tmp_path / "failing_bench.py"
    failing.write_text("raise SystemExit(3)")
    monkeypatch.setattr(run_all, "BENCHES", {"fake": (str(script), ["--quick"]), "failing": (str(failing), [])})
    monkeypatch.setattr(run_all, "wait_until_settled", lambda: 0.0)  # a busy machine would make this wait minutes
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


def physics_command(length: int, options: str = "--num-inference-steps 4") -> str:
    return (f"cosmos-hf eval physics --pipeline pipelines/v2w --cond-frames {length} --num-frames 17 {options} "
            f"--out outputs/eval/c{length}")


def physics_run(length: int, seeds=(0,), command=None) -> dict:
    """The shape of a `cosmos-hf eval physics` results.json for one conditioning length."""
    sample = {"scene": "free_fall", "seed": 0, "view": 0, "psnr": 25.0, "curves": {"psnr": [25.0, 25.0]}}
    overall = {"psnr": 25.0, "ssim": 0.9, "fg_iou": 0.4, "object_iou": 0.3}
    config = {"seeds": list(seeds), "cond_frames": [length], "command": command or physics_command(length)}
    return {"benchmark": "physics", "config": config,
            "results": {f"cond{length}": {"copy-last": {"overall": overall, "samples": [sample]}}}}


def test_physics_runs_merge_as_one_command_without_per_frame_curves(tmp_path, capsys):
    import merge_physics_results

    merged = merge_physics_results.merge_physics_results([physics_run(1), physics_run(5)], "two processes")
    assert list(merged["results"]) == ["cond1", "cond5"] and merged["note"] == "two processes"
    commands = [physics_command(1), physics_command(5)]
    assert merged["config"] == {"seeds": [0], "cond_frames": [1, 5], "command": commands}
    sample = merged["results"]["cond5"]["copy-last"]["samples"][0]
    assert "curves" not in sample and sample["psnr"] == 25.0
    # the inputs are left as they were
    run = physics_run(1)
    merge_physics_results.merge_physics_results([run, physics_run(5)], "")
    assert "curves" in run["results"]["cond1"]["copy-last"]["samples"][0]

    with pytest.raises(ValueError, match=r"differs from run 0 in config \['seeds'\]"):
        merge_physics_results.merge_physics_results([physics_run(1), physics_run(5, seeds=(1,))], "")
    with pytest.raises(ValueError, match=r"repeats \['cond1'\]"):
        merge_physics_results.merge_physics_results([physics_run(1), physics_run(1)], "")

    paths = []
    for length in (1, 5):
        paths.append(tmp_path / f"c{length}.json")
        paths[-1].write_text(json.dumps(physics_run(length)))
    out = tmp_path / "merged.json"
    assert merge_physics_results.main([*map(str, paths), "--out", str(out), "--note", "n"]) == 0
    assert json.loads(out.read_text())["config"]["cond_frames"] == [1, 5]
    assert "cond5                copy-last: PSNR 25.00" in capsys.readouterr().out


def test_physics_merge_refuses_runs_whose_predictor_options_differ():
    """Sampling steps, guidance, the pipeline folder, --pipeline-kwargs or --seed are kept only in each run's command
    (the predictor name shows a pipeline folder's last part only: outputs/v2w06/pipeline and outputs/v2w07/pipeline
    are both "pipeline:pipeline"), so a 4-step cond1 run merged with a 35-step cond5 run as one result."""
    import merge_physics_results

    merge = merge_physics_results.merge_physics_results
    for options, differing in (("--num-inference-steps 35", "--num-inference-steps"),
                               ("--num-inference-steps 4 --seed -1", "--seed"),
                               ("--num-inference-steps 4 --pipeline-kwargs use_medusa=true", "--pipeline-kwargs"),
                               ("--num-inference-steps=4 --pipeline pipelines/other", "--pipeline")):
        with pytest.raises(ValueError, match=rf"run 1's command differs from run 0's in \['{differing}'\]"):
            merge([physics_run(1), physics_run(5, command=physics_command(5, options))], "")
    with pytest.raises(ValueError, match="run 1 has no config.command"):
        merge([physics_run(1), {**physics_run(5), "config": {"seeds": [0], "cond_frames": [5]}}], "")
    # The conditioning lengths, the output folder, --no-progress, option order and --name=value spelling may differ.
    same = physics_command(5, "--no-progress --num-inference-steps=4").replace("--pipeline pipelines/v2w ", "") \
        + " --pipeline pipelines/v2w"
    assert merge([physics_run(1), physics_run(5, command=same)], "")["config"]["cond_frames"] == [1, 5]
    # A merged file merges again (its command is a list).
    twice = merge([merge([physics_run(1), physics_run(5)], ""), physics_run(9)], "")
    assert twice["config"]["command"] == [physics_command(1), physics_command(5), physics_command(9)]
