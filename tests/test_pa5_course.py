"""The course's shape (instructors only: never in the student release, it reads the answer key and
the hidden tests' points): handouts, points per function and level, written questions, answer key."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import answers  # noqa: E402
import course  # noqa: E402
import release  # noqa: E402

TASKS = ("task1", "task2", "task3")


@pytest.fixture(scope="module")
def rows():
    return release.graded_rows(REPO)


def test_every_graded_test_names_its_function_and_none_carries_over_a_quarter(rows):
    assert course.problems(rows) == [], "the course's rules (tools/course.py) are broken; see the list"
    levels = {row["level"] for row in rows}
    assert levels == {"core", "stretch"}, f"both levels are in use: {levels}"
    beam = [row for row in rows if row["function"] == "beam_search"]
    assert {row["level"] for row in beam} == {"core", "stretch"}, "beam search: core tests plus the stretch grid"


def test_the_quarter_rule_is_enforced():
    rows = [{"nodeid": "tests/test_task1_x.py::test_a", "points": 3, "function": "beam_search", "level": "core"},
            {"nodeid": "tests/test_task1_x.py::test_b", "points": 1, "function": "sample", "level": "core"},
            {"nodeid": "tests/test_task1_x.py::test_c", "points": 1, "function": None, "level": "core"}]
    found = course.problems(rows, course={"task1": [course.Exercise("beam_search", 1, 1, 1),
                                                    course.Exercise("sample", 1, 1, 1)]},
                            graded={"task1/decoding.py": ["beam_search", "sample"]})
    assert any("beam_search carries 3 of 5 points, over a quarter" in p for p in found), found
    assert any("test_c: name its graded function" in p for p in found), found
    assert any("notebook" in p for p in found), "the notebook is one of a task's graded items"


def test_the_handouts_tables_are_current_and_state_the_time(rows):
    for task in TASKS:
        text = course.handout(REPO, task).read_text()
        assert course.render(text, task, rows) == text, f"{task}/HANDOUT.md is stale: run python tools/course.py"
        assert "Estimated time: **about" in text, f"{task}/HANDOUT.md states its time estimate"
        for exercise in course.COURSE[task]:
            assert course.check_command(task, exercise.function) in text


def test_a_handout_command_selects_exactly_its_functions_tests(rows):
    """`pytest -k grades_<function>` (the handouts' last column) matches the keyword conftest adds;
    no function's keyword may contain another's, or its command would select both."""
    keywords = {"grades_" + row["function"].split(".")[0] for row in rows if row["function"] not in (None, "notebook")}
    clashes = [(a, b) for a in keywords for b in keywords if a != b and a in b]
    assert not clashes, f"`-k {clashes[0][0]}` would also select {clashes[0][1]}'s tests"
    selected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               "-k", "grades_beam_search", "tests/test_task1_decoding.py"],
                              cwd=REPO, capture_output=True, text=True).stdout
    got = {line for line in selected.splitlines() if "::" in line}
    expected = {row["nodeid"] for row in rows if row["function"] == "beam_search"}
    assert got == expected, f"-k grades_beam_search selects {len(got)} tests, beam_search has {len(expected)}"


def test_each_graded_function_has_one_your_turn_cell_and_the_cells_are_current():
    for task in TASKS:
        notebook = json.loads((REPO / task / f"{task}.ipynb").read_text())
        named = [name for _, names in course.YOUR_TURN[task] for name in names]
        assert sorted(named) == sorted(course.files_of(task)), (
            f"{task}: every graded function is named in exactly one 'your turn' cell (tools/course.py's YOUR_TURN)")
        before = [(c.get("metadata", {}), "".join(c["source"])) for c in notebook["cells"]]
        after = [(c.get("metadata", {}), "".join(c["source"])) for c in course.render_notebook(notebook, task)["cells"]]
        assert after == before, f"{task}/{task}.ipynb's 'your turn' cells are stale: run python tools/course.py"
        for heading, names in course.YOUR_TURN[task]:
            text = course.your_turn(task, names)
            assert all(f"<summary>Hint: <code>{name}</code></summary>" in text and course.check_command(task, name) in text
                       for name in names), "each function: its check command and a collapsed hint"


def test_each_notebook_has_8_to_12_written_questions_matching_the_answer_key():
    for task in TASKS:
        asked = answers.questions(REPO / task / f"{task}.ipynb")
        assert 8 <= len(asked) <= 12, f"{task}: {len(asked)} written questions, the course asks 8 to 12"
        assert all(q["answer"] == "" for q in asked), f"{task}: the repository's answer cells hold only the placeholder"
        assert [q["id"] for q in asked] == [f"{task}-q{i}" for i in range(1, len(asked) + 1)], "ids in order"
        key = answers.key(REPO, task)
        assert list(key) == [q["id"] for q in asked], f"instructors/{task}.md covers exactly {task}'s questions"
        for q in asked:
            assert key[q["id"]]["points"] == q["points"], f"{q['id']}: the rubric's points equal the question's"
            assert course.ANSWER_KEY_MARK in key[q["id"]]["text"], f"{q['id']}: the section has its answer key"
        handout = course.handout(REPO, task).read_text()
        total = sum(q["points"] for q in asked)
        assert f"{len(asked)} written questions ({total:g} points)" in " ".join(handout.split()), (
            f"{task}/HANDOUT.md states the notebook's {len(asked)} questions and {total:g} points")


def test_the_release_leaves_out_the_key_and_ships_handouts_and_empty_answer_cells(tmp_path):
    dest = tmp_path / "student"
    release.build(REPO, dest)
    assert course.release_problems(dest) == []
    assert not (dest / "instructors").exists() and not (dest / "tests" / "test_pa5_course.py").exists()
    key_lines = {line.strip() for task in TASKS for line in (REPO / "instructors" / f"{task}.md").read_text().splitlines()
                 if len(line.strip()) > 60}
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".ipynb", ".py", ".txt", ".yml"):
            text = path.read_text()
            leaked = [line for line in key_lines if line in text]
            assert not leaked, f"{path.relative_to(dest)} holds the answer key's text: {leaked[0][:60]!r}"
    for task in TASKS:
        assert course.handout(dest, task).is_file(), f"the release ships {task}/HANDOUT.md"
        assert [q["answer"] for q in answers.questions(dest / task / f"{task}.ipynb")] == [""] * len(
            answers.questions(REPO / task / f"{task}.ipynb")), f"{task}: every answer cell ships empty"


def test_the_solutions_build_keeps_the_solutions_and_still_leaves_out_hidden_tests_and_the_key(tmp_path):
    summary = release.build(REPO, tmp_path / "solutions", solutions=True)
    assert summary["stubbed"] == 0
    for rel in release.GRADED:
        assert (tmp_path / "solutions" / rel).read_text() == (REPO / rel).read_text(), f"{rel} ships with its solutions"
    assert not (tmp_path / "solutions" / "instructors").exists(), "the answer key stays out"
    shipped = (tmp_path / "solutions" / "tests" / "test_task2_ppo.py").read_text()
    assert release.HIDDEN_TESTS[0] not in shipped and "test_ppo_update_follows_the_reference_update" not in shipped, \
        "hidden tests stay out (they grade the next cohort too)"


def test_release_problems_name_a_leaked_key_and_a_filled_answer(tmp_path):
    dest = tmp_path / "student"
    release.build(REPO, dest)
    (dest / "instructors").mkdir()
    notebook = dest / "task2" / "task2.ipynb"
    data = json.loads(notebook.read_text())
    cell = next(c for c in data["cells"] if "answer" in c["metadata"].get("pa5", {}))
    cell["source"] = ["An answer someone left in. **Answer key.**"]
    notebook.write_text(json.dumps(data))
    (dest / "task3" / "HANDOUT.md").unlink()
    found = course.release_problems(dest)
    assert any("instructors" in p for p in found), found
    assert any("task2/task2.ipynb: an answer cell is not empty" in p for p in found), found
    assert any("holds answer-key text" in p for p in found), found
    assert any("no task3/HANDOUT.md" in p for p in found), found


def test_answers_are_collected_from_the_notebook_or_its_executed_copy(tmp_path):
    for task in TASKS:
        (tmp_path / task).mkdir()
        (tmp_path / task / f"{task}.ipynb").write_text((REPO / task / f"{task}.ipynb").read_text())
    notebook = tmp_path / "task1" / "task1.ipynb"
    data = json.loads(notebook.read_text())
    first = next(c for c in data["cells"] if c["metadata"].get("pa5", {}).get("answer") == "task1-q1")
    first["source"] = ["Greedy repeats because ..."]
    notebook.write_text(json.dumps(data))
    executed = tmp_path / "runs" / "task1" / "task1.ipynb"
    executed.parent.mkdir(parents=True)
    data = json.loads((REPO / "task1" / "task1.ipynb").read_text())
    second = next(c for c in data["cells"] if c["metadata"].get("pa5", {}).get("answer") == "task1-q2")
    second["source"] = ["Written in the executed copy."]
    executed.write_text(json.dumps(data))
    collected = answers.collect(tmp_path)
    by_id = {q["id"]: q["answer"] for q in collected["task1"]}
    assert by_id["task1-q1"] == "Greedy repeats because ..." and by_id["task1-q2"] == "Written in the executed copy."
    assert by_id["task1-q3"] == "", "an untouched answer cell reads as no answer"
    text = answers.report(tmp_path, with_key=True)
    assert "## task1: 2 of 8 answered" in text and "(no answer)" in text and course.ANSWER_KEY_MARK in text


def test_a_question_without_its_answer_cell_is_refused(tmp_path):
    data = json.loads((REPO / "task1" / "task1.ipynb").read_text())
    index = next(i for i, c in enumerate(data["cells"]) if c["metadata"].get("pa5", {}).get("answer") == "task1-q4")
    del data["cells"][index]
    (tmp_path / "task1.ipynb").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="task1-q4 must be followed by its markdown answer cell"):
        answers.questions(tmp_path / "task1.ipynb")
