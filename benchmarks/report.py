"""Every benchmark, saved as JSON for the book's Performance page: ``python -m benchmarks.report``.

``make bench`` runs this. Each script runs with its defaults and ``--json``; its rows, with the
date, torch's version and the arguments, go to ``_build/benchmarks/<name>.json`` and are
printed as a table. The Performance page shows a saved file, with its date, instead of running
the script again; without one, it runs the script itself while the book is built. Run a script
alone (``python -m benchmarks.conv_speed``) for its goals and verdicts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "_build" / "benchmarks"


def names() -> list[str]:
    """The benchmark modules of this folder (``conv_speed``, ...)."""
    here = Path(__file__).parent
    return sorted(
        path.stem for path in here.glob("[a-z]*.py") if path.stem != Path(__file__).stem
    )


def run(name: str, arguments: list[str]) -> list[dict]:
    """The rows ``python -m benchmarks.<name> --json ARGUMENTS`` prints."""
    command = [sys.executable, "-m", f"benchmarks.{name}", "--json", *arguments]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.{name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def save(name: str, arguments: list[str], rows: list[dict], folder: Path) -> Path:
    """``folder/<name>.json``: the rows with the date, torch's version and the arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": name,
        "arguments": arguments,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "rows": rows,
    }
    path = folder / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=1) + "\n")
    temporary.replace(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument(
        "--out", type=Path, default=SAVED, help=f"folder (default {SAVED})"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(names()))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}; one of {names()}")
    for name in args.names or names():
        rows = run(name, [])
        path = save(name, [], rows, args.out)
        print(f"== {name} (saved to {path})")
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
