"""Handing in and grading elsewhere: ``make submit``'s archive and the Gradescope bundle, offline."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import gradescope  # noqa: E402
import release  # noqa: E402
import submit  # noqa: E402

from tests.test_pa5_release import SAMPLE_GRADED, _graded_repository  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_submit_archives_graded_files_notebooks_and_run_evidence(tmp_path):
    root = tmp_path / "checkout"
    for rel in release.GRADED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("# the student's code\n")
    notebook = json.loads((REPO / "task1" / "task1.ipynb").read_text())
    answer = next(c for c in notebook["cells"] if c["metadata"].get("pa5", {}).get("answer") == "task1-q1")
    answer["source"] = ["Greedy search repeats the sentence because ..."]
    (root / "task1" / "task1.ipynb").write_text(json.dumps(notebook))
    runs = root / "runs" / "task1"
    runs.mkdir(parents=True)
    (runs / "task1.ipynb").write_text("{}")
    (runs / "metrics.json").write_text(json.dumps({"task": "task1", "profile": "tiny", "metrics": {}}))
    (runs / "quality_diversity.png").write_bytes(b"\x89PNG")
    (runs / "cache.safetensors").write_bytes(b"weights")  # a run artefact, not evidence
    (root / "notes.txt").write_text("not part of a submission")
    summary = submit.submit(root, tmp_path / "submission.zip")
    with zipfile.ZipFile(tmp_path / "submission.zip") as archive:
        names = set(archive.namelist())
    assert set(release.GRADED) <= names, "every graded file is handed in"
    assert {"task1/task1.ipynb", "runs/task1/task1.ipynb", "runs/task1/metrics.json",
            "runs/task1/quality_diversity.png"} <= names, "the notebook, its executed copy, figures and metrics"
    assert "runs/task1/cache.safetensors" not in names and "notes.txt" not in names
    assert summary["profiles"] == {"task1": "tiny"}
    assert summary["answered"] == {"task1": (1, 8)}, "it counts the written answers (task1: 1 of 8)"
    assert any(line.startswith("runs/task2/task2.ipynb") for line in summary["missing"]), \
        "a task whose notebook was never run is named as missing"


def _autograder(tmp_path, submission: Path) -> dict:
    """The bundle of a sample repository, unpacked as Gradescope does, run on ``submission``."""
    root = _graded_repository(tmp_path)
    (root / "tools").mkdir()
    for name in ("release.py", "gradescope.py"):
        shutil.copy(REPO / "tools" / name, root / "tools" / name)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    bundle = gradescope.build(root, tmp_path / "bundle", SAMPLE_GRADED)
    autograder = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(autograder / "source")
    shutil.copytree(submission(root), autograder / "submission")
    source = autograder / "source"
    for script in ("setup.sh", "run_autograder"):
        (source / script).chmod(0o755)  # zip extraction drops the mode; Gradescope restores it
    env = {**os.environ, "AUTOGRADER_ROOT": str(autograder), "PA5_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(source / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((autograder / "results" / "results.json").read_text())


def test_gradescope_bundle_grades_the_solutions_and_the_stubs_into_results_json(tmp_path):
    def solutions(root):
        release.build(root, root.parent / "solved", SAMPLE_GRADED)
        shutil.copy(root / "task9" / "sample.py", root.parent / "solved" / "task9" / "sample.py")
        return root.parent / "solved"

    results = _autograder(tmp_path / "a", solutions)
    assert results["score"] == 3 and {t["score"] for t in results["tests"]} == {1}, results
    by_name = {t["name"].split("::")[1]: t for t in results["tests"]}
    assert set(by_name) == {"test_top_k_keeps_the_largest", "test_only_the_argument_check", "test_hidden_top_k_ties"}
    assert by_name["test_hidden_top_k_ties"]["visibility"] == "after_due_date", "hidden tests stay hidden until the due date"
    assert by_name["test_top_k_keeps_the_largest"]["visibility"] == "visible"
    assert all(t["max_score"] == 1 and t["output"] == "passed" for t in results["tests"])

    def stubs_in_a_folder(root):  # a make-submit archive unpacked one folder down
        release.build(root, root.parent / "upload" / "pa5", SAMPLE_GRADED)
        return root.parent / "upload"

    results = _autograder(tmp_path / "b", stubs_in_a_folder)
    by_name = {t["name"].split("::")[1]: t for t in results["tests"]}
    assert by_name["test_top_k_keeps_the_largest"]["score"] == 0
    assert "your code here" in by_name["test_top_k_keeps_the_largest"]["output"], "a failure shows its message"
    assert results["score"] == sum(t["score"] for t in results["tests"]) == 1, "the sample's one free argument check"


def test_the_readmes_jupyter_commands_work_after_setup():
    """README, "Running the notebooks yourself": `.venv/bin/jupyter lab` after `make setup`, with the
    virtual environment's Python as the default kernel."""
    bin_dir = Path(sys.executable).parent
    for command in (["lab", "--version"], ["nbconvert", "--version"]):
        result = subprocess.run([str(bin_dir / "jupyter"), *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"jupyter {' '.join(command)}: {result.stderr[-2000:]} (is jupyterlab in requirements.txt?)"
    specs = json.loads(subprocess.run([str(bin_dir / "jupyter"), "kernelspec", "list", "--json"], capture_output=True,
                                      text=True, timeout=120, check=True).stdout)["kernelspecs"]
    assert Path(specs["python3"]["resource_dir"]).resolve().is_relative_to(Path(sys.prefix).resolve()), \
        f"the default kernel comes from {specs['python3']['resource_dir']}, outside the virtual environment"
    python3 = specs["python3"]["spec"]["argv"][0]  # "python": the server's own interpreter
    assert python3 in ("python", sys.executable) or Path(python3).resolve() == Path(sys.executable).resolve(), \
        f"the default kernel runs {python3}, not this environment's {sys.executable}"
    readme = (REPO / "README.md").read_text()
    assert "make setup && .venv/bin/jupyter lab" in readme


def test_a_submission_without_a_graded_file_is_graded_as_handed_out(tmp_path):
    def empty(root):
        (root.parent / "upload").mkdir()
        (root.parent / "upload" / "README.md").write_text("forgot the code")
        return root.parent / "upload"

    results = _autograder(tmp_path, empty)
    assert "Not in the submission (graded as handed out): task9/sample.py" in results["output"]
    assert len(results["tests"]) == 3 and results["score"] == 1, "the other tests are still graded"


def test_the_classroom_workflow_has_one_step_per_graded_test_function():
    import classroom
    import yaml
    tests = {"tests/test_task1_decoding.py::test_greedy[False]": 0.5, "tests/test_task1_decoding.py::test_greedy[True]": 0.5,
             "tests/test_task2_ppo.py::test_gae": 2, "tests/test_notebooks.py::test_notebook_runs_in_tiny_profile[task1]": 2}
    parsed = yaml.safe_load(classroom.workflow(tests))
    assert set(parsed[True] if True in parsed else parsed["on"]) == {"push", "repository_dispatch"}
    steps = parsed["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-command-grader")]
    assert [(s["with"]["test-name"], s["with"]["max-score"]) for s in graders] == [
        ("tests/test_task1_decoding.py::test_greedy", 1), ("tests/test_task2_ppo.py::test_gae", 2),
        ("tests/test_notebooks.py::test_notebook_runs_in_tiny_profile", 2)], "parametrised cases are one step, points summed"
    assert all(s["with"]["command"].endswith(s["with"]["test-name"]) for s in graders)
    reporter = steps[-1]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter")
    assert reporter["with"]["runners"].split(",") == [s["id"] for s in graders]
    assert set(reporter["env"]) == {f"{s['id'].upper()}_RESULTS" for s in graders}
