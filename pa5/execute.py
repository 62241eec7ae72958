"""Execute the task notebooks top to bottom (``make run``; the notebook tests use it too)."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from pa5.paths import REPO_ROOT, runs_dir
from pa5.profile import CHOICES, TASKS


def execute_notebook(task: str, profile: str | None = None, output_dir: Path | None = None,
                     seed: int | None = None) -> Path:
    """Run ``<task>/<task>.ipynb`` with ``PROFILE=profile`` (and ``SEED=seed``) injected into its
    parameters cell (``None``: nothing injected, the notebook reads ``$PA5_PROFILE`` / its own seed).

    The executed copy is written to ``output_dir`` (default ``runs/<task>/``); the kernel starts in
    the task's folder and inherits this process's environment (``PA5_RUNS_DIR`` included), with this
    checkout first on its PYTHONPATH: the kernel imports the modules of the checkout whose notebook it
    runs, whatever else is installed (a student release graded beside the instructors' solutions).
    """
    import papermill

    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown; allowed: {', '.join(TASKS)}")
    if profile is not None and profile not in CHOICES:
        raise ValueError(f"profile={profile!r} is unknown; allowed: {', '.join(CHOICES)}")
    source = REPO_ROOT / task / f"{task}.ipynb"
    target = Path(output_dir or runs_dir(task)) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    parameters = {**({} if profile is None else {"PROFILE": profile}), **({} if seed is None else {"SEED": seed})}
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *([previous] if previous else [])])
    try:
        papermill.execute_notebook(str(source), str(target), parameters=parameters,
                                   cwd=str(source.parent), kernel_name="python3", progress_bar=False)
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous
    return target


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pa5.execute", description=__doc__)
    parser.add_argument("--profile", choices=CHOICES, help="default: $PA5_PROFILE, else auto")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="run each notebook once per seed, into runs/seed<SEED>/<task>/ (default: the "
                             "notebook's own seed, into runs/<task>/); then `python -m pa5.summarize runs/seed*`")
    parser.add_argument("--reseed-standins", action="store_true",
                        help="with --seeds: build the tiny profile's stand-ins with the same seed too "
                             "(PA5_STANDIN_SEED; each seed's stand-ins are built once and cached)")
    args = parser.parse_args(argv)
    if args.reseed_standins and not args.seeds:
        parser.error("--reseed-standins needs --seeds")
    profile = args.profile or os.environ.get("PA5_PROFILE") or "auto"
    runs = Path(os.environ.get("PA5_RUNS_DIR", REPO_ROOT / "runs"))
    for seed in args.seeds or [None]:
        if seed is not None:  # the notebook writes to $PA5_RUNS_DIR/<task>; the kernel inherits it
            os.environ["PA5_RUNS_DIR"] = str(runs / f"seed{seed}")
            if args.reseed_standins:  # the kernel inherits it: pa5.standins.standin_seed
                os.environ["PA5_STANDIN_SEED"] = str(seed)
        for task in args.tasks:
            print(f"executing {task}/{task}.ipynb (profile {profile}{'' if seed is None else f', seed {seed}'}) ...",
                  flush=True)
            started = time.perf_counter()
            target = execute_notebook(task, args.profile, runs_dir(task), seed)
            print(f"  -> {target} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
