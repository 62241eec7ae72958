"""Execute the task notebooks top to bottom (``make run``; the notebook tests use it too)."""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from pa5.paths import REPO_ROOT, runs_dir
from pa5.profile import CHOICES, TASKS, resolve_profile


# Limits of one notebook run: a cell, and the whole notebook (task 1's tiny run alone took ~555 s
# on the 2-core development machine, its slowest cell 305 s).
CELL_TIMEOUT_S = 20 * 60
NOTEBOOK_TIMEOUT_S = 40 * 60
_KERNEL_BOOT = ("import sys; sys.path[:0] = {paths!r}; from ipykernel import kernelapp; "
                "kernelapp.launch_new_instance()")


class NotebookError(RuntimeError):
    """A notebook did not run to its end: a cell raised, or it ran past a limit."""


def execute_notebook(task: str, profile: str | None = None, output_dir: Path | None = None,
                     seed: int | None = None, checkout: Path | None = None, site_packages: Path | None = None,
                     cell_timeout: float = CELL_TIMEOUT_S, timeout: float = NOTEBOOK_TIMEOUT_S) -> Path:
    """Run ``<checkout>/<task>/<task>.ipynb`` (default checkout: this repository) with
    ``PROFILE=profile`` (and ``SEED=seed``) injected into its parameters cell (``None``: nothing
    injected, the notebook reads ``$PA5_PROFILE`` / its own seed), in a papermill subprocess.

    The executed copy is written to ``output_dir`` (default ``runs/<task>/``); the kernel starts in
    the task's folder and inherits this process's environment (``PA5_RUNS_DIR`` included), with the
    checkout first on its PYTHONPATH: the kernel imports the modules of the checkout whose notebook it
    runs, whatever else is installed. ``site_packages`` (grading): the kernel runs isolated instead,
    as the grading worker does - the base interpreter with ``-I -S``, ``sys.path`` = [checkout,
    site_packages], no PYTHONPATH or virtual environment in its environment.

    Limits: ``cell_timeout`` seconds per cell, ``timeout`` for the whole notebook (the papermill
    process group is killed). Raises :class:`NotebookError` with the failing cell's error.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown; allowed: {', '.join(TASKS)}")
    if profile is not None and profile not in CHOICES:
        raise ValueError(f"profile={profile!r} is unknown; allowed: {', '.join(CHOICES)}")
    for name, value in (("cell_timeout", cell_timeout), ("timeout", timeout)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    if profile is None:
        resolve_profile()  # an unknown $PA5_PROFILE is reported here, not as a traceback from the kernel
    checkout = Path(checkout or REPO_ROOT).resolve()
    source = checkout / task / f"{task}.ipynb"
    target = Path(output_dir or runs_dir(task)).resolve() / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "papermill", str(source), str(target), "--cwd", str(source.parent),
               "--execution-timeout", str(int(math.ceil(cell_timeout))), "--no-progress-bar", "--log-level", "ERROR"]
    for name, value in (("PROFILE", profile), ("SEED", seed)):
        if value is not None:
            command += ["-p", name, str(value)]
    with tempfile.TemporaryDirectory(prefix="pa5-kernel-") as kernels:
        if site_packages is None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
            command += ["-k", "python3"]
        else:
            env = _isolated_kernel(Path(kernels), checkout, Path(site_packages))
            command += ["-k", "pa5-isolated"]
        with _termination_raises():
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, start_new_session=True)
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise NotebookError(f"{task}/{task}.ipynb ran past its limit of {timeout:g} s") from None
            finally:  # any exit (a limit, Ctrl-C, SIGTERM, a test's time limit): papermill goes too
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    if process.returncode != 0:
        raise NotebookError(f"{task}/{task}.ipynb did not run to its end (papermill exit {process.returncode}):\n"
                            + _cell_error(output))
    return target


@contextmanager
def _termination_raises():
    """SIGTERM / SIGHUP raise SystemExit while a notebook runs, so that the cleanup above runs: by
    default they end this process at once and leave papermill (its own session, not reached by the
    signal) and its kernel running. The kernel exits by itself once papermill is gone (ipykernel
    watches its parent). Signal handlers can only be set from the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, terminate) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _isolated_kernel(folder: Path, checkout: Path, site_packages: Path) -> dict[str, str]:
    """A kernel spec "pa5-isolated" in ``folder``; returns the papermill process's environment."""
    spec = folder / "kernels" / "pa5-isolated"
    spec.mkdir(parents=True)
    python = os.path.realpath(sys._base_executable)
    boot = _KERNEL_BOOT.format(paths=[str(checkout), str(site_packages)])
    (spec / "kernel.json").write_text(json.dumps({"argv": [python, "-I", "-S", "-c", boot, "-f", "{connection_file}"],
                                                  "display_name": "pa5 (isolated)", "language": "python"}))
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "OMP_NUM_THREADS", "PA5_PROFILE", "PA5_RUNS_DIR", "PA5_CACHE",
            "PA5_STANDIN_SEED", "MPLBACKEND")
    return {**{key: os.environ[key] for key in keep if key in os.environ}, "JUPYTER_PATH": str(folder),
            "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}


def _cell_error(output: str, lines: int = 30) -> str:
    """The end of papermill's report: the failing cell's exception, not papermill's own stack."""
    text = output.strip().splitlines()
    marker = next((i for i, line in enumerate(text) if "Exception encountered at" in line
                   or "PapermillExecutionError" in line), None)
    return "\n".join(text[marker:] if marker is not None else text[-lines:])[-6000:]


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
    try:
        resolve_profile(args.profile)  # an unknown $PA5_PROFILE stops here, before any kernel starts
    except ValueError as error:
        parser.error(str(error))
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
