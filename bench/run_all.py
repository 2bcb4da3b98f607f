"""`make bench`: run every benchmark in bench/ (each prints one JSON object) and collect them in outputs/bench/."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH.parent / "outputs" / "bench"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    failures = []
    for script in sorted(BENCH.glob("*.py")):
        if script.name in ("run_all.py", "timing.py"):  # this runner and the shared timing helper
            continue
        print(f"== {script.name}", flush=True)
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=BENCH.parent)
        if result.returncode != 0:
            failures.append(script.name)
            print(result.stderr[-3000:], flush=True)
            continue
        start = result.stdout.find("{")
        report = json.loads(result.stdout[start:])
        (OUT / f"{script.stem}.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2), flush=True)
    if failures:
        sys.exit(f"benchmarks failed: {failures}")


if __name__ == "__main__":
    main()
