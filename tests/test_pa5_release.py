"""The student release's source transforms and the grading guard (tools/release.py, conftest.py)."""
import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import release  # noqa: E402

BEGIN, END = release.SOLUTION
BEGIN_HIDDEN, END_HIDDEN = release.HIDDEN_TESTS
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


def test_notebook_kernels_import_the_checkout_that_runs_them(monkeypatch, tmp_path):
    """The kernel is a separate process: without this checkout first on its PYTHONPATH it would
    import whatever task modules are installed - grading a release with the solutions' code."""
    import papermill

    from pa5.execute import execute_notebook
    from pa5.paths import REPO_ROOT

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **kwargs: seen.update(
        pythonpath=os.environ.get("PYTHONPATH")))
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    execute_notebook("task1", "tiny", output_dir=tmp_path)
    assert seen["pythonpath"] == os.pathsep.join([str(REPO_ROOT), "/elsewhere"])
    assert os.environ["PYTHONPATH"] == "/elsewhere", "the process's own environment is restored"


def _graded_repository(tmp_path) -> Path:
    """A repository with one graded function (top_k), three graded tests, one of them hidden."""
    root = tmp_path / "repo"
    (root / "task9").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "task9" / "__init__.py").write_text("")
    (root / "task9" / "sample.py").write_text(MODULE)
    shutil.copy(Path(__file__).with_name("conftest.py"), root / "tests" / "conftest.py")
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    (root / "tests" / "test_sample.py").write_text(textwrap.dedent(f"""
        import pytest
        import torch
        from task9.sample import top_k

        @pytest.mark.points(1)
        def test_top_k_keeps_the_largest():
            assert top_k(torch.tensor([1.0, 3.0, 2.0]), 1).tolist() == [float("-inf"), 3.0, float("-inf")]

        @pytest.mark.points(1)
        def test_only_the_argument_check():  # passes whatever top_k computes: free points on the stubs
            with pytest.raises(ValueError):
                top_k(torch.zeros(3), 0)

        {BEGIN_HIDDEN}
        @pytest.mark.points(1)
        def test_hidden_top_k_ties():
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
