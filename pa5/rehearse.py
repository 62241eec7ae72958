"""``make rehearse``: the full profile, offline, on a CPU - every notebook top to bottom on fake assets.

    python -m pa5.rehearse [--tasks task2] [--layers 2]

It builds the fake assets (``pa5.fake_assets``: real on-disk formats, random weights; cached), points
``HF_HOME``, ``TORCH_HOME`` and ``PA5_DATA`` at them, and runs each notebook with ``PA5_PROFILE=full``
and ``PA5_REHEARSAL=1`` - the one switch, which scales step, epoch and sample counts down
(``<task>.config.rehearse``); precision policy, batch sizes, max_length and image size stay full.
Executed notebooks and their metrics go to ``runs/rehearsal/<task>/``, the times to ``runs/rehearsal/rehearsal.json``. Then it checks each run:
the notebook completed, its device audit passed (every model on the session's device, every trainable
parameter float32), the profile was full, and no over-optimisation verdict came from missing gold.
``make test`` runs it (``tests/test_rehearsal.py``), so CI does.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from pathlib import Path

from pa5 import fake_assets
from pa5.paths import REPO_ROOT, cache_dir
from pa5.profile import TASKS


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """``os.environ`` updated with ``values`` within (the notebook kernels inherit it), restored after."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_run(task: str, metrics_path: Path) -> dict:
    """The rehearsal's assertions on one notebook's ``metrics.json``; raises AssertionError naming what failed."""
    record = json.loads(metrics_path.read_text())
    assert record["profile"] == "full" and record["rehearsal"], f"{task}: ran as {record['profile']}, not the rehearsal"
    audit = record["audit"]
    assert audit["ok"] and audit["models"] > 0, f"{task}: device audit failed: {audit}"
    if task == "task2":
        for name, result in record["metrics"]["overoptimisation_verdicts"].items():
            judged = result["judged_steps"]
            if min(judged) < 2:
                assert result["verdict"].startswith("too little gold data"), \
                    f"task2 {name}: a verdict from {judged} judged steps: {result['verdict']}"
            else:
                assert all(math.isfinite(g) for g in result["gold"]), f"task2 {name}: verdict from NaN gold"
    return record


def rehearse(tasks=TASKS, layers: int = 2, output: Path | None = None) -> dict[str, dict]:
    """Build the fake assets, run ``tasks``' notebooks in the rehearsal, check them; {task: record}."""
    from pa5.execute import execute_notebook

    output = Path(output or REPO_ROOT / "runs" / "rehearsal")
    started = time.perf_counter()
    variables = fake_assets.build(cache_dir() / "fake-assets", layers=layers)
    print(f"fake assets ready ({time.perf_counter() - started:.0f} s): {variables['HF_HOME']}", flush=True)
    records = {}
    with environment({**variables, "PA5_PROFILE": "full", "PA5_REHEARSAL": "1", "PA5_RUNS_DIR": str(output)}):
        for task in tasks:
            started = time.perf_counter()
            execute_notebook(task, "full", output / task)
            records[task] = check_run(task, output / task / "metrics.json")
            records[task]["seconds"] = time.perf_counter() - started
            print(f"  {task}: rehearsal passed in {time.perf_counter() - started:.0f} s "
                  f"(precision {records[task]['precision']}, {records[task]['audit']['models']} models audited "
                  f"on {records[task]['device']})", flush=True)
    summary = {task: {"seconds": round(r["seconds"], 1), "precision": r["precision"], "device": r["device"],
                      "models_audited": r["audit"]["models"]} for task, r in records.items()}
    (output / "rehearsal.json").write_text(json.dumps(summary, indent=2) + "\n")
    return records


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pa5.rehearse", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--layers", type=int, default=2, help="SmolLM2 depth of the fake model (real: 30)")
    args = parser.parse_args(argv)
    rehearse(args.tasks, args.layers)


if __name__ == "__main__":
    main()
