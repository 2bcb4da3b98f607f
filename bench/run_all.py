"""`make bench`: run the benchmarks behind the documents' tables, write their JSON to bench/results/, render the tables.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--no-render] [--results DIR]

Each entry of BENCHES runs as `python bench/<script>.py <args>` in a fresh process (each prints one JSON object);
the object, with the script's wall time added, is written atomically to bench/results/<name>.json, then
bench/render_readme_tables.py rewrites the tables between their marker comments in README.md and
pipelines/*/README.md from those files. The arguments are the scripts' quick settings, meant to keep the whole run
under 15 minutes on 2 idle cores (each JSON records its `run_all.wall_s`; before each entry the run waits, at most
150 s, for the load average to settle); every script also has a fuller default (see its docstring).

Wall times on the 2-core AMD EPYC: idle, video_tokenizers ~3 min, profile_tokenizers, nano_world_models and
action_latency_nano ~30-40 s each; measured while the machine was busy (upper bounds), autoregressive ~70 s (random
model, long context, static cache + torch.compile on the nano AR model), ar_medusa_nano ~2 min (the nano AR
checkpoint's Medusa trees on 8 held-out prompts), sim ~1 min, curation ~70 s (in-process executor, shot detection,
split memory; Ray is left out, its actor start-up alone takes minutes), guardrails ~20 s, evaluation ~10 s.
Benchmarks not listed here (text_overlay, planning, gpu_real_size) are run by hand; the README quotes their commands.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
NANO = "pipelines/cosmos-nano-"

# name -> (script, arguments); name is also the JSON file's stem and what render_readme_tables.py reads
BENCHES = {
    "video_tokenizers": ("video_tokenizers.py", ["--quick"]),
    "profile_tokenizers": ("profile_tokenizers.py", ["--quick"]),
    "nano_world_models": ("diffusion.py", ["--threads", "1", "--skip_random", "--pipeline", NANO + "video2world",
                                            "--pipeline", NANO + "text2world", "--pipeline", NANO + "ar-video2world"]),
    "action_latency_nano": ("action_latency.py", ["--pipeline", NANO + "action-conditioned", "--threads", "1", "2",
                                                  "--steps", "35", "4", "--condition_frames", "1", "5"]),
    "autoregressive": ("autoregressive.py", ["--quick"]),
    "ar_medusa_nano": ("autoregressive.py", ["--skip_random", "--model", NANO + "ar-video2world/ar_model",
                                             "--held_out_tokenizer", NANO + "tokenizer-dv4x8x8"]),
    "sim": ("sim.py", []),
    "guardrails": ("guardrails.py", []),
    "curation": ("curation.py", ["--videos", "4", "--skip-ray"]),
    "evaluation": ("evaluation.py", []),
}


def write_json_atomic(path: Path, report: dict):
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(temporary, path)


def run_bench(name: str, results: Path) -> float:
    script, arguments = BENCHES[name]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(BENCH / script), *arguments], capture_output=True, text=True,
                            cwd=REPO)
    seconds = time.perf_counter() - start
    sys.stderr.write(result.stderr[-3000:] if result.returncode else
                     "".join(line + "\n" for line in result.stderr.splitlines() if line.startswith("warning")))
    if result.returncode != 0:
        raise RuntimeError(f"bench/{script} exited with {result.returncode}")
    report = json.loads(result.stdout[result.stdout.index("{"):])
    report["run_all"] = {"script": os.path.relpath(BENCH / script, REPO), "arguments": arguments,
                         "wall_s": round(seconds, 1)}
    write_json_atomic(results / f"{name}.json", report)
    return seconds


def wait_until_settled(max_seconds: float = 150.0) -> float:
    """Wait (at most `max_seconds`) until the 1-minute load average falls below the busy threshold, so that a bench
    is not flagged busy by the one that ran just before it (the load average decays over about a minute)."""
    threshold, waited = 0.5 * (os.cpu_count() or 1), 0.0
    while os.getloadavg()[0] > threshold and waited < max_seconds:
        time.sleep(5)
        waited += 5
    return waited


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these")
    parser.add_argument("--no-render", action="store_true", help="leave README.md as it is")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    failures, total = [], 0.0
    for name in args.only or BENCHES:
        waited = wait_until_settled()
        print(f"== {name}: bench/{BENCHES[name][0]} {' '.join(BENCHES[name][1])}"
              + (f" (after {waited:.0f} s for the load to settle)" if waited else ""), flush=True)
        try:
            seconds = run_bench(name, args.results)
        except (RuntimeError, ValueError) as err:
            failures.append(name)
            print(f"   failed: {err}", flush=True)
            continue
        total += seconds
        print(f"   {seconds:.0f} s -> {os.path.relpath(args.results / f'{name}.json', REPO)}", flush=True)
    print(f"benchmarks: {total / 60:.1f} minutes", flush=True)
    if not args.no_render and args.results == RESULTS:
        subprocess.run([sys.executable, str(BENCH / "render_readme_tables.py")], check=True, cwd=REPO)
    if failures:
        sys.exit(f"benchmarks failed: {failures}")


if __name__ == "__main__":
    main()
