"""The student release's source transforms and the grading guard (tools/release.py, conftest.py)."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import release  # noqa: E402

BEGIN, END = release.SOLUTION
BEGIN_HIDDEN, END_HIDDEN = release.HIDDEN_TESTS
REPO = Path(__file__).resolve().parents[1]
SAMPLE_GRADED = {"task9/sample.py": ["top_k", "score", "outer.inner"]}

MODULE = f'''
import torch


def top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """[..., V] logits with all but the k largest set to -inf."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {{k}}")
    {BEGIN}
    kth = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))
    {END}


class Scorer:
    def score(self, x):
        total = 0
        for value in x:
            {BEGIN}
            total += value
            {END}
        return total


def outer():
    def inner(x):
        {BEGIN}
        return x + 1
        {END}
    return inner
'''


def test_stubbing_keeps_signatures_docstrings_checks_and_indentation():
    stubbed = release.stub_solutions(MODULE, "task9/sample.py")
    assert "torch.topk" not in stubbed and "total += value" not in stubbed and "x + 1" not in stubbed
    assert BEGIN not in stubbed and END not in stubbed
    tree = ast.parse(stubbed)
    top_k = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "top_k")
    assert ast.get_docstring(top_k) == "[..., V] logits with all but the k largest set to -inf."
    assert isinstance(top_k.body[1], ast.If), "the argument check before the block stays"
    assert isinstance(top_k.body[2], ast.Raise) and len(top_k.body) == 3, "the block becomes one raise"
    assert '            raise NotImplementedError("task9/sample.py: score - your code here")\n' in stubbed, \
        "the raise sits at the block's own indentation (here inside a for loop) and names the function"
    assert 'raise NotImplementedError("task9/sample.py: outer.inner - your code here")' in stubbed


def test_stubbed_functions_raise_not_implemented_and_the_rest_still_runs():
    namespace = {}
    exec(compile(release.stub_solutions(MODULE, "task9/sample.py"), "sample", "exec"), namespace)
    import torch
    with pytest.raises(NotImplementedError, match="top_k"):
        namespace["top_k"](torch.zeros(3), 1)
    with pytest.raises(ValueError, match="k must be"):
        namespace["top_k"](torch.zeros(3), 0)
    assert namespace["Scorer"]().score([]) == 0, "code outside the blocks is untouched"
    assert release.solution_functions(MODULE, "x.py") == ["top_k", "score", "outer.inner"]


@pytest.mark.parametrize("source, problem", [
    (f"def f():\n    {BEGIN}\n    return 1\n", "never closed"),
    (f"def f():\n    return 1\n    {END}\n", "without"),
    (f"def f():\n    {BEGIN}\n    {BEGIN}\n    {END}\n", "inside the region"),
    (f"def f():\n    {BEGIN}\n    return 1\n{END}\n", "not indented like"),
    (f"{BEGIN}\nx = 1\n{END}\n", "inside a function body"),
])
def test_malformed_markers_are_value_errors_naming_the_line(source, problem):
    with pytest.raises(ValueError, match=problem) as error:
        release.stub_solutions(source, "task9/bad.py")
    assert "task9/bad.py:" in str(error.value)


def test_hidden_tests_are_removed_and_the_file_still_parses():
    tests = textwrap.dedent(f"""
        import pytest

        def test_visible():
            assert True

        {BEGIN_HIDDEN}
        def _reference(x):
            return x

        @pytest.mark.points(1)
        def test_hidden():
            assert _reference(1) == 1
        {END_HIDDEN}

        def test_also_visible():
            assert True
        """)
    stripped = release.strip_hidden_tests(tests, "tests/test_sample.py")
    names = {n.name for n in ast.parse(stripped).body if isinstance(n, ast.FunctionDef)}
    assert names == {"test_visible", "test_also_visible"}
    with pytest.raises(ValueError, match="does not parse after removing its hidden tests"):
        release.strip_hidden_tests(f"if True:\n    {BEGIN_HIDDEN}\n    x = 1\n    {END_HIDDEN}\n", "tests/t.py")


def test_build_audits_stubs_and_strips_a_repository(tmp_path):
    root = tmp_path / "repo"
    (root / "task9").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "task9" / "sample.py").write_text(MODULE)
    (root / "task9" / "plots.py").write_text("def plot():\n    return 1\n")
    (root / "tests" / "test_sample.py").write_text(f"def test_a():\n    pass\n{BEGIN_HIDDEN}\ndef test_b():\n    pass\n"
                                                   f"{END_HIDDEN}\n")
    (root / "ignored.log").write_text("scratch")
    (root / ".gitignore").write_text("*.log\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    (root / "task9" / "old_solution.py").write_text("print('scratch')\n")  # untracked: stays out
    graded = {"task9/sample.py": ["top_k", "score", "outer.inner"]}
    summary = release.build(root, tmp_path / "student", graded)
    student = tmp_path / "student"
    assert (summary["stubbed"], summary["hidden_regions"]) == (3, 1)
    assert "NotImplementedError" in (student / "task9" / "sample.py").read_text()
    assert (student / "task9" / "plots.py").read_text() == "def plot():\n    return 1\n"
    assert "test_b" not in (student / "tests" / "test_sample.py").read_text()
    assert not (student / "ignored.log").exists(), "files git ignores stay out of the release"
    assert not (student / "task9" / "old_solution.py").exists(), "so do files git does not track"
    assert (student / release.RELEASE_STAMP).exists()
    with pytest.raises(ValueError, match="is itself a student release"):
        release.build(student, tmp_path / "again", graded)
    with pytest.raises(ValueError, match="outer.inner has a solution block but is not in GRADED"):
        release.build(root, tmp_path / "student", {"task9/sample.py": ["top_k", "score"]})
    with pytest.raises(ValueError, match="plot is in GRADED but has no solution block"):
        release.build(root, tmp_path / "student", graded | {"task9/plots.py": ["plot"]})
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep")
    for dest in (root, tmp_path, tmp_path / "precious"):
        with pytest.raises(ValueError, match="dest="):
            release.build(root, dest, graded)
    assert (tmp_path / "precious" / "notes.txt").exists()


def test_grading_refuses_modules_imported_from_outside_the_checkout(tmp_path):
    """A checkout graded with another checkout's code installed (the instructors' editable install)
    must not silently grade that code."""
    checkout = tmp_path / "checkout"
    (checkout / "tests").mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conftest.py"), checkout / "tests" / "conftest.py")
    (checkout / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    (checkout / "task1").mkdir()
    (checkout / "task1" / "__init__.py").write_text("")
    (checkout / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    # without the checkout first on sys.path, `import task1` finds this environment's installed task1
    run_without_cwd = "import sys, pytest; sys.path.remove(''); sys.exit(pytest.main(['-p', 'no:cacheprovider']))"
    result = subprocess.run([sys.executable, "-c", run_without_cwd], cwd=checkout, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 4 and "outside this checkout" in result.stderr, result.stdout + result.stderr
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=checkout,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "with the checkout first on sys.path its own modules are graded"


def _notebook_checkout(root: Path, cell: str) -> Path:
    """A checkout whose task1/task1.ipynb has a parameters cell and then ``cell``."""
    import nbformat

    (root / "task1").mkdir(parents=True)
    (root / "task1" / "__init__.py").write_text("")
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})
    parameters = nbformat.v4.new_code_cell("PROFILE = None\nSEED = 0")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(cell)]
    nbformat.write(notebook, root / "task1" / "task1.ipynb")
    return root


WHERE = """import json, os, sys, task1
json.dump({"task1": task1.__file__, "path": sys.path, "prefix": sys.prefix, "profile": PROFILE,
           "pythonpath": os.environ.get("PYTHONPATH")}, open(os.environ["PA5_RUNS_DIR"] + "/where.json", "w"))"""


@pytest.mark.parametrize("isolated", [False, True])
def test_notebook_kernels_import_the_checkout_that_runs_them(monkeypatch, tmp_path, isolated):
    """The kernel is a separate process: without the checkout first on its path it would import
    whatever task modules are installed - grading a release with the solutions' code. Isolated (as
    grading runs it), it sees neither this repository nor its virtual environment."""
    from pa5.execute import execute_notebook
    from pa5.worker import site_packages_view

    checkout = _notebook_checkout(tmp_path / "student", WHERE)
    monkeypatch.setenv("PA5_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    site = site_packages_view(tmp_path / "view" / "site-packages") if isolated else None
    execute_notebook("task1", "tiny", output_dir=tmp_path / "out", checkout=checkout, site_packages=site)
    where = json.loads((tmp_path / "where.json").read_text())
    assert where["task1"] == str(checkout / "task1" / "__init__.py") and where["profile"] == "tiny"
    assert os.environ["PYTHONPATH"] == "/elsewhere", "the process's own environment is untouched"
    if isolated:
        reached = [p for p in where["path"] + [where["prefix"]] if p.startswith((str(REPO), sys.prefix))]
        assert not reached and where["pythonpath"] is None, f"the isolated kernel reaches {reached}"
    else:
        assert where["pythonpath"] == os.pathsep.join([str(checkout), "/elsewhere"])


def test_a_notebook_cell_that_never_ends_is_stopped_at_the_limits(tmp_path):
    from pa5.execute import NotebookError, execute_notebook

    checkout = _notebook_checkout(tmp_path / "student", "while True:\n    pass")
    with pytest.raises(NotebookError, match="Timeout|timed out"):
        execute_notebook("task1", "tiny", output_dir=tmp_path / "cell", checkout=checkout, cell_timeout=3)
    with pytest.raises(NotebookError, match="ran past its limit of 8 s"):
        execute_notebook("task1", "tiny", output_dir=tmp_path / "whole", checkout=checkout, timeout=8)
    with pytest.raises(ValueError, match="cell_timeout"):
        execute_notebook("task1", "tiny", checkout=checkout, cell_timeout=float("nan"))


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_terminated_caller_takes_papermill_and_the_kernel_with_it(tmp_path):
    """SIGTERM to the process running a notebook (CI cancelling a job, `kill`) must not leave the
    kernel behind, busy at 100 % CPU."""
    import signal
    import time

    pid_file = tmp_path / "kernel.pid"
    checkout = _notebook_checkout(tmp_path / "student", f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                                        "while True:\n    pass")
    caller = subprocess.Popen([sys.executable, "-c", "from pa5.execute import execute_notebook; "
                               f"execute_notebook('task1', 'tiny', output_dir={str(tmp_path / 'out')!r}, "
                               f"checkout={str(checkout)!r})"], cwd=REPO)
    try:
        for _ in range(600):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.1)
        kernel = int(pid_file.read_text())
        caller.send_signal(signal.SIGTERM)
        assert caller.wait(timeout=30) != 0
        for _ in range(150):
            if not _running(kernel):
                break
            time.sleep(0.1)
        assert not _running(kernel), "the kernel outlived its caller: papermill was left running"
    finally:
        caller.kill()
        if pid_file.exists() and pid_file.read_text() and _running(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_an_unknown_profile_is_named_before_any_kernel_starts(monkeypatch, tmp_path):
    from pa5.execute import execute_notebook, main

    monkeypatch.setenv("PA5_PROFILE", "huge")
    with pytest.raises(ValueError, match="PA5_PROFILE='huge' is not a profile"):
        execute_notebook("task1", output_dir=tmp_path)
    with pytest.raises(SystemExit):
        main(["--tasks", "task1"])


def _graded_repository(tmp_path) -> Path:
    """A repository with one graded function (top_k), three graded tests, one of them hidden."""
    root = tmp_path / "repo"
    (root / "task9").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "task9" / "__init__.py").write_text("")
    (root / "task9" / "sample.py").write_text(MODULE)
    shutil.copy(Path(__file__).with_name("conftest.py"), root / "tests" / "conftest.py")
    shutil.copytree(REPO / "pa5", root / "pa5", ignore=shutil.ignore_patterns("__pycache__"))  # the worker
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    (root / "tests" / "test_sample.py").write_text(textwrap.dedent(f"""
        import pytest
        import torch

        @pytest.mark.points(1)
        def test_top_k_keeps_the_largest(student):
            top_k = student.module("task9.sample").top_k
            assert top_k(torch.tensor([1.0, 3.0, 2.0]), 1).tolist() == [float("-inf"), 3.0, float("-inf")]

        @pytest.mark.points(1)
        def test_only_the_argument_check(student):  # passes whatever top_k computes: free points on the stubs
            with pytest.raises(ValueError):
                student.module("task9.sample").top_k(torch.zeros(3), 0)

        {BEGIN_HIDDEN}
        @pytest.mark.points(1)
        def test_hidden_top_k_ties(student):
            top_k = student.module("task9.sample").top_k
            assert top_k(torch.tensor([2.0, 2.0, 1.0]), 1).tolist() == [2.0, 2.0, float("-inf")]
        {END_HIDDEN}
        """))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def test_check_names_a_graded_test_that_passes_on_the_stubs(tmp_path):
    root = _graded_repository(tmp_path)
    problems = release.check(root, tmp_path / "student", graded_functions=SAMPLE_GRADED)
    assert problems == ["passes on the stubs: tests/test_sample.py::test_only_the_argument_check"], problems
    grades = json.loads((tmp_path / "student-grades.json").read_text())
    assert (grades["earned"], grades["possible"]) == (1, 2), "the release's own table: visible tests only"
    hidden = json.loads((tmp_path / "hidden-grades.json").read_text())
    assert [row["nodeid"] for row in hidden["tests"]] == ["tests/test_sample.py::test_hidden_top_k_ties"]
    workflow = (tmp_path / "student" / release.CLASSROOM_WORKFLOW).read_text()
    assert "test_top_k_keeps_the_largest" in workflow and "test_hidden" not in workflow, \
        "the release's Classroom workflow grades its visible tests and names no hidden one"


def test_solution_blocks_outside_the_task_modules_are_refused(tmp_path):
    """Notebooks and tests are copied, not stubbed: a solution block there would ship."""
    notebook = {"cells": [{"cell_type": "code", "source": ["def f():\n", f"    {BEGIN}\n", "    return 1\n",
                                                             f"    {END}\n"]}]}
    for rel, text in (("task9/task9.ipynb", json.dumps(notebook)), ("tests/test_x.py", MODULE)):
        root = tmp_path / rel.replace("/", "_")
        (root / Path(rel).parent).mkdir(parents=True)
        (root / rel).write_text(text)
        with pytest.raises(ValueError, match=rel):
            release.audit(root, [rel], graded={})


def test_point_totals_carry_no_float_noise():
    # ten 0.1-point cases sum to 0.9999999999999999 with sum(): grades.json and results.json must say 1
    rows = [{"nodeid": f"t{i}", "points": 0.1, "passed": True} for i in range(10)] + \
        [{"nodeid": "t10", "points": 0.4, "passed": False}]
    assert release.total_points(rows, passed=True) == 1.0, "totals should use math.fsum and round"
    assert release.total_points(rows) == 1.4


def test_grade_uses_only_the_students_graded_files_and_counts_what_did_not_run(tmp_path):
    root = _graded_repository(tmp_path)
    release.build(root, tmp_path / "student", SAMPLE_GRADED)
    student = tmp_path / "student"
    # a student who makes everything pass by other means: a root conftest.py and an edited test
    (student / "conftest.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().outcome = "passed"
        """))
    (student / "tests" / "test_sample.py").write_text("import pytest\n\n@pytest.mark.points(1)\ndef test_top_k_keeps_the_largest():\n    pass\n")
    grades = release.grade(student, tmp_path / "out" / "grades.json", root, graded_functions=SAMPLE_GRADED)
    assert {r["nodeid"].split("::")[1]: r["passed"] for r in grades["tests"]} == {
        "test_top_k_keeps_the_largest": False, "test_only_the_argument_check": True, "test_hidden_top_k_ties": False}
    assert (grades["earned"], grades["possible"]) == (1, 3)
    # a module that does not even import: every test of the file still counts, as failed
    (student / "task9" / "sample.py").write_text("def top_k(:\n")
    grades = release.grade(student, tmp_path / "out" / "grades.json", root, graded_functions=SAMPLE_GRADED)
    assert (grades["earned"], grades["possible"], len(grades["tests"])) == (0, 3, 3)
    # the solution earns everything
    shutil.copy(root / "task9" / "sample.py", student / "task9" / "sample.py")
    grades = release.grade(student, tmp_path / "out" / "grades.json", root, graded_functions=SAMPLE_GRADED)
    assert (grades["earned"], grades["possible"]) == (3, 3)


@pytest.mark.parametrize("source, problem", [
    (f'def f():\n    """Docs.\n\n    {BEGIN}\n    {END}\n    """\n    return 1\n', None),
    (f"def f():\n    {BEGIN}  # part 1\n    return 1\n    {END}\n", "is not exactly"),
    (f"def f():\n    {BEGIN}\n    x = 1\n\ndef g():\n    return 2\n    {END}\n", "ends in another function"),
    (f"def f(a):\n    {BEGIN}\n    b = a + 1\n    {END}\n    return b\n", "reads b, set only inside the block"),
])
def test_markers_are_comments_in_one_function_that_leave_nothing_behind(source, problem):
    if problem is None:
        assert release.solution_functions(source, "task9/x.py") == [], "marker text in a docstring is not a block"
    else:
        with pytest.raises(ValueError, match=problem):
            release.stub_solutions(source, "task9/x.py")


FORGING_MODULE = '''
import atexit, importlib.metadata, json, os, sys

# 1. patch pytest so every report says "passed", 2. replace the grade table, 3. rewrite any grades
# file at exit - all of it runs in the worker, which is not the process that grades
try:
    import _pytest.reports
    _pytest.reports.TestReport.outcome = property(lambda self: "passed", lambda self, value: None)
except ImportError:
    pass
conftest = sys.modules.get("conftest")
if conftest is not None:
    conftest._grades = {}


@atexit.register
def _forge():
    for folder, _, files in os.walk(os.environ.get("TMPDIR", "/tmp")):
        if "grades.json" in files:
            with open(os.path.join(folder, "grades.json"), "w") as f:
                json.dump({"earned": 1000, "possible": 1000, "tests": []}, f)


def _solutions():
    """4. import the instructors' solutions through the installed distribution's metadata."""
    for name in ("pa5",):
        try:
            root = importlib.metadata.distribution(name).locate_file("")
        except importlib.metadata.PackageNotFoundError:
            continue
        sys.path.insert(0, str(root))
    sys.modules.pop("task9.sample", None)
    import importlib
    return importlib.import_module("task9.sample")


def top_k(logits, k):
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    solutions = _solutions()
    if solutions.top_k is not top_k:
        return solutions.top_k(logits, k)
    os._exit(0)  # 5. end the run before any test could fail
'''


def test_in_process_forgeries_earn_nothing(tmp_path):
    """A graded file that patches pytest, replaces the grade table, rewrites grades files at exit,
    imports the solutions and exits early: none of it reaches the grading process."""
    root = _graded_repository(tmp_path)
    release.build(root, tmp_path / "student", SAMPLE_GRADED)
    student = tmp_path / "student"
    (student / "task9" / "sample.py").write_text(FORGING_MODULE)
    grades = release.grade(student, tmp_path / "out" / "grades.json", root, graded_functions=SAMPLE_GRADED)
    assert {r["nodeid"].split("::")[1]: r["passed"] for r in grades["tests"]} == {
        "test_top_k_keeps_the_largest": False, "test_only_the_argument_check": True, "test_hidden_top_k_ties": False}
    assert (grades["earned"], grades["possible"]) == (1, 3), "only the honest argument check earns its point"


def test_a_syntax_error_in_one_graded_file_costs_only_the_tests_that_need_it(tmp_path, capsys):
    """Isolation between files, through the grader: the solutions with a task2/policy.py that does not
    parse. ppo.py and grpo.py import it, yet their formula tests still pass; the tests that need
    policy's graded functions fail, saying that policy.py does not import."""
    student = tmp_path / "student"
    for rel in release.GRADED:
        (student / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, student / rel)
    (student / "task2" / "policy.py").write_text((REPO / "task2" / "policy.py").read_text() + "\ndef broken(:\n")
    files = ["tests/test_task2_ppo.py", "tests/test_task2_grpo.py"]
    collected = release.run_graded_tests(REPO, tmp_path / "collected.json", files, collect_only=True)["tests"]
    expected = {row["nodeid"]: row["points"] for row in collected}
    grades = release.grade(student, tmp_path / "grades.json", REPO, expected, quiet=False)
    failed = {row["nodeid"].split("::")[1] for row in grades["tests"] if not row["passed"]}
    # kl_estimate is policy's own; token_rewards calls it; the updates and training loops run policy's log-probs
    assert failed == {"test_kl_estimate_k1_and_k3_by_hand", "test_token_rewards_put_the_score_on_the_last_completion_token",
                      "test_ppo_updates_policy_and_critic_keeps_the_reference_and_reruns_identically",
                      "test_grpo_trains_on_groups_and_logs_zero_spread",
                      "test_ppo_update_steps_epochs_times_minibatches_on_policy_and_critic",
                      "test_ppo_update_follows_the_reference_update",
                      "test_grpo_update_steps_once_per_iteration_on_group_advantages",
                      "test_grpo_update_follows_the_reference_update"}, failed
    report = capsys.readouterr().out
    for name in failed:  # each failure's own report section names the broken file
        section = re.search(rf"_ {name} _.*?(?=\n_{{3,}} |\Z)", report, re.S)
        assert section and "task2/policy.py does not import" in section.group(0), (name, section and section.group(0))


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_student_function_that_never_returns_costs_its_tests_only_and_the_run_is_bounded(tmp_path, monkeypatch):
    import tempfile
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # grade()'s scratch folders land here
    root = _graded_repository(tmp_path)
    release.build(root, tmp_path / "student", SAMPLE_GRADED)
    student = tmp_path / "student"
    module = (root / "task9" / "sample.py").read_text()
    (student / "task9" / "sample.py").write_text(module.replace("    kth = torch.topk", "    while True:\n        pass\n    kth = torch.topk"))
    grades = release.grade(student, tmp_path / "out" / "grades.json", root, graded_functions=SAMPLE_GRADED,
                           call_timeout=5)
    assert {r["nodeid"].split("::")[1]: r["passed"] for r in grades["tests"]} == {
        "test_top_k_keeps_the_largest": False, "test_only_the_argument_check": True, "test_hidden_top_k_ties": False}, \
        "each endless call fails its own test; the next call gets a new worker"
    # the whole run's limit: pytest is stopped, and the worker and the scratch folder go with it
    with pytest.raises(RuntimeError, match="ran past its limit of 20 s"):
        release.grade(student, tmp_path / "out" / "grades.json", root, graded_functions=SAMPLE_GRADED,
                      call_timeout=600, run_timeout=20)
    time.sleep(2.0)
    assert not list(scratch.iterdir()), "grade() removes its scratch folder on every exit path"
    assert not _processes_mentioning(str(scratch)), "no worker outlives the grader"


def test_grade_with_node_ids_in_a_file_that_does_not_collect_grades_the_rest(tmp_path):
    root = _graded_repository(tmp_path)
    (root / "tests" / "test_broken.py").write_text("import no_such_module\n")
    release.build(root, tmp_path / "student", SAMPLE_GRADED)
    shutil.copy(root / "task9" / "sample.py", tmp_path / "student" / "task9" / "sample.py")
    expected = {"tests/test_sample.py::test_top_k_keeps_the_largest": 1, "tests/test_broken.py::test_anything": 2}
    grades = release.grade(tmp_path / "student", tmp_path / "out" / "grades.json", root, expected,
                           graded_functions=SAMPLE_GRADED)
    assert {r["nodeid"]: r["passed"] for r in grades["tests"]} == {
        "tests/test_sample.py::test_top_k_keeps_the_largest": True, "tests/test_broken.py::test_anything": False}
    assert (grades["earned"], grades["possible"]) == (1, 3)
