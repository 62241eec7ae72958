"""The grading harness itself: points count only for passing tests; grades.json adds up."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

_SAMPLE = '''
import pytest

@pytest.mark.points(2)
def test_passes():
    assert True

@pytest.mark.points(3)
def test_fails():
    assert False

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

@pytest.mark.points(4)
def test_setup_error(broken):
    pass

def test_ungraded():
    pass
'''


def test_grades_json_and_table(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_task1_sample.py").write_text(_SAMPLE)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path),
                             "--grades-json", str(tmp_path / "grades.json")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    grades = json.loads((tmp_path / "grades.json").read_text())
    assert (grades["earned"], grades["possible"]) == (2, 9)
    assert {row["nodeid"].split("::")[1]: row["passed"] for row in grades["tests"]} == {
        "test_passes": True, "test_fails": False, "test_setup_error": False}
    assert "task1: 2 / 9" in result.stdout, "tests/test_task1_*.py form the task1 group"
    assert "TOTAL: 2 / 9" in result.stdout


def test_make_grade_command_runs_again_when_grades_json_exists(tmp_path):
    """The Makefile's own `grade` command, twice: the second run finds last run's grades.json."""
    import re
    import shlex

    makefile = (Path(__file__).parents[1] / "Makefile").read_text().replace("\\\n", " ")  # join continued lines
    recipe = re.search(r"^grade:.*\n\t\$\(PY\) (-m pytest [^|\n]*)", makefile, re.MULTILINE).group(1)
    (tmp_path / "tests").mkdir()
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "tests" / "conftest.py")
    (tmp_path / "tests" / "test_task1_sample.py").write_text(_SAMPLE)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    for attempt in (1, 2):
        result = subprocess.run([sys.executable, *shlex.split(recipe), "-p", "no:cacheprovider"], capture_output=True,
                                text=True, cwd=tmp_path, timeout=120)
        assert result.returncode == 1, f"run {attempt}: {result.stdout[-1500:]}{result.stderr[-1500:]}"
        assert json.loads((tmp_path / "grades.json").read_text())["earned"] == 2
