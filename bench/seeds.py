"""Run the tiny profile over several seeds, each with its own stand-ins, and print mean ± sd tables.

    python bench/seeds.py --tasks task1 task2            # seeds 0 1 2, stand-ins rebuilt per seed

Each seed is ``python -m pa5.execute --profile tiny --seeds <s> --reseed-standins`` into
``runs/seed<s>/`` (the stand-ins are built with that seed: another machine's rebuild is another seed),
then ``python -m pa5.summarize`` over the seeds' metrics.json. The READMEs' tiny-profile results come
from this command.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from pa5.paths import REPO_ROOT
from pa5.profile import TASKS


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--summary-only", action="store_true", help="only summarise runs/seed<s>/ already there")
    args = parser.parse_args(argv)
    if not args.summary_only:
        subprocess.run([sys.executable, "-m", "pa5.execute", "--profile", "tiny", "--tasks", *args.tasks,
                        "--seeds", *map(str, args.seeds), "--reseed-standins"], cwd=REPO_ROOT, check=True)
    runs = [str(Path(REPO_ROOT) / "runs" / f"seed{s}") for s in args.seeds]
    subprocess.run([sys.executable, "-m", "pa5.summarize", *runs, "--tasks", *args.tasks], cwd=REPO_ROOT, check=True)


if __name__ == "__main__":
    main()
