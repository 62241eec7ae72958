"""Every task notebook runs top to bottom in the tiny profile and writes runs/<task>/metrics.json."""
import json
import subprocess
import sys

import nbformat
import pytest

from pa5.execute import execute_notebook
from pa5.paths import REPO_ROOT
from pa5.profile import TASKS


# What later issues and the README read from a notebook's metrics.json.
REQUIRED_METRICS = {
    "task2": [f"{part}/{key}" for part, keys in (("reward_model", ("test_accuracy", "test_margin")),
                                               ("dpo", ("test_reward_accuracy", "test_margin"))) for key in keys]
             + [f"models/{m}/{k}" for m in ("base", "dpo", "ppo", "grpo") for k in ("rm_reward", "gold_success", "length", "kl")]
             + [f"overoptimisation/{m}/{k}" for m in ("ppo", "grpo") for k in ("step", "rm_reward", "gold_success", "kl")],
    "task3": [f"accuracy/{m}" for m in ("resnet50", "mobilenet_v3_large")]
             + [f"r2/{kind}/{pair}/{r2}" for kind in ("usae", "independent")
                for pair in ("resnet50->resnet50", "resnet50->mobilenet_v3_large", "mobilenet_v3_large->resnet50",
                             "mobilenet_v3_large->mobilenet_v3_large") for r2 in ("global_mean", "variance_weighted")]
             + [f"firing_entropy/{kind}/{k}" for kind in ("usae", "independent") for k in ("mean", "frac_universal")]
             + ["dead_fraction/usae", "dead_fraction/independent"],
}


# The stand-ins each tiny notebook loads, built before its kernel starts (tests/conftest.py).
STANDINS = {"task1": ("smollm2", "mini_orca"), "task2": ("smollm2", "mini_orca"), "task3": ("cifar100", "imagenet")}


@pytest.fixture
def standins_of_the_task(task, request):
    for name in STANDINS[task]:
        request.getfixturevalue(f"{name}_standin")


@pytest.mark.notebook
@pytest.mark.points(2, function="notebook")
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.usefixtures("standins_of_the_task")
def test_notebook_runs_in_tiny_profile(task, tmp_path, monkeypatch, request):
    """The student's notebook run: its kernel imports the student's checkout (isolated when grading,
    like the worker: tests/conftest.py's --student / --isolate-student / --site-packages)."""
    monkeypatch.setenv("PA5_RUNS_DIR", str(tmp_path))  # inherited by the kernel
    config = request.config
    executed = execute_notebook(task, "tiny", output_dir=tmp_path / task, checkout=config.getoption("--student"),
                                site_packages=config.getoption("--site-packages")
                                if config.getoption("--isolate-student") else None)
    assert executed.exists(), f"no executed copy of {task}/{task}.ipynb was written"
    metrics = json.loads((tmp_path / task / "metrics.json").read_text())
    assert (metrics["task"], metrics["profile"]) == (task, "tiny"), (
        f"runs/{task}/metrics.json is from another task or profile: {metrics.get('task')}, {metrics.get('profile')}")
    for path in REQUIRED_METRICS.get(task, ()):
        value = metrics["metrics"]
        for key in path.split("/"):
            assert key in value, f"runs/{task}/metrics.json lacks {path}"
            value = value[key]


def test_committed_notebooks_carry_no_outputs():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "clean_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"run `python tools/clean_notebooks.py`:\n{result.stdout}"


@pytest.mark.parametrize("task", TASKS)
def test_first_code_cell_is_the_parameters_cell(task):
    nb = nbformat.read(REPO_ROOT / task / f"{task}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), "papermill injects PROFILE after this cell"
    assert "PROFILE" in first.source and "SEED" in first.source
