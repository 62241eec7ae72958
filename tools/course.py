"""The course's shape: each graded function's points (from its tests' markers), level, difficulty,
importance and estimated time; the handouts' function tables; the one-quarter rule.

    python tools/course.py          # print points per task, level and function; rewrite the handouts' tables
    python tools/course.py --check  # the same without writing: exit 1 if a table is stale or a rule broken

Points come from ``@pytest.mark.points(n, function=..., level=...)`` (tests/conftest.py), hidden tests
included, so a handout's table is the grade that counts. The rest - difficulty, importance, minutes,
the order of work - is the instructors' judgement, written once below.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import release  # noqa: E402  (tools/ is not a package)

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_SHARE = 0.25  # no function may carry more than a quarter of its task's points
NOTEBOOK = "notebook"  # the pseudo-function of tests/test_notebooks.py: the notebook runs top to bottom
TABLE = ("<!-- BEGIN FUNCTIONS TABLE (python tools/course.py) -->", "<!-- END FUNCTIONS TABLE -->")
_TASK = re.compile(r"task[123]")
ANSWER_KEY_MARK = "**Answer key.**"  # opens every key in instructors/<task>.md; never in the release


@dataclass(frozen=True)
class Exercise:
    function: str  # as in release.GRADED ("concept_objective.objective": the inner function)
    difficulty: int  # 1 (a few lines from a formula) .. 5 (a stateful algorithm with exact conventions)
    importance: int  # 1 (a detail) .. 5 (the idea the task is about)
    minutes: int  # core work, for a student who has read the task's README
    stretch_minutes: int = 0  # the stretch tests' extra work, if the function has any


# In the order of work: each builds on the ones before it.
COURSE: dict[str, list[Exercise]] = {
    "task1": [
        Exercise("distinct_n", 1, 2, 15), Exercise("repetition_rate", 1, 2, 15), Exercise("longest_repeated_span", 2, 2, 30),
        Exercise("top_k_filter", 2, 4, 30), Exercise("top_p_filter", 3, 5, 45), Exercise("min_p_filter", 2, 3, 30),
        Exercise("typical_filter", 3, 3, 45), Exercise("penalize_repetition", 2, 3, 30),
        Exercise("ban_repeated_ngrams", 3, 3, 45), Exercise("_one_token_at_a_time", 3, 5, 90),
        Exercise("greedy_search", 1, 4, 20), Exercise("sample", 2, 5, 45), Exercise("beam_search", 4, 4, 180, 180),
        Exercise(NOTEBOOK, 1, 5, 60),
    ],
    "task2": [
        Exercise("bradley_terry_loss", 1, 4, 20), Exercise("last_token_index", 2, 4, 30), Exercise("token_scores", 2, 4, 40),
        Exercise("selective_logps", 2, 4, 30), Exercise("token_logps", 3, 5, 60), Exercise("token_kl", 2, 3, 30),
        Exercise("dpo_loss", 2, 5, 45), Exercise("kl_estimate", 2, 4, 30), Exercise("token_rewards", 2, 4, 30),
        Exercise("compute_gae", 3, 5, 60), Exercise("masked_whiten", 2, 3, 20), Exercise("policy_loss", 3, 5, 45),
        Exercise("value_loss", 2, 4, 30), Exercise("ppo_update", 4, 5, 120), Exercise("group_advantages", 2, 4, 30),
        Exercise("grpo_loss", 4, 5, 90), Exercise("grpo_update", 3, 5, 60),
        Exercise("best_of_n_weights", 3, 3, 45), Exercise("calibration", 2, 3, 30), Exercise(NOTEBOOK, 1, 5, 90),
    ],
    "task3": [
        Exercise("usae_loss", 2, 5, 45), Exercise("usae_step", 2, 5, 45), Exercise("usae_epoch", 3, 5, 60),
        Exercise("firing_counts", 1, 3, 15),
        Exercise("firing_entropy", 2, 5, 30), Exercise("cofire_proportion", 3, 4, 45), Exercise("r2_global_mean", 1, 3, 15),
        Exercise("r2_variance_weighted", 2, 3, 20), Exercise("concept_energy", 2, 3, 30),
        Exercise("concept_objective.objective", 3, 4, 45), Exercise("maximise", 3, 4, 75), Exercise(NOTEBOOK, 1, 5, 60),
    ],
}


def task_of(nodeid: str) -> str | None:
    """The task a graded test belongs to: in its file name, or a notebook test's parameter."""
    match = _TASK.search(nodeid)
    return match.group(0) if match else None


def files_of(task: str, graded: dict[str, list[str]] = release.GRADED) -> dict[str, str]:
    """{function: the file a student writes it in} for ``task``."""
    return {name: path for path, names in graded.items() if path.startswith(task + "/") for name in names}


def points(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{task: {function: {"core": points, "stretch": points}}} of the graded rows (grades.json's "tests")."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        task = task_of(row["nodeid"])
        if task is None:
            continue
        levels = table.setdefault(task, {}).setdefault(row["function"], {"core": 0.0, "stretch": 0.0})
        levels[row["level"]] += row["points"]
    return table


def problems(rows: list[dict], course: dict[str, list[Exercise]] = COURSE,
             graded: dict[str, list[str]] = release.GRADED, root: Path = REPO_ROOT) -> list[str]:
    """What breaks the course's rules in the tasks ``root`` has: a task test without a graded function,
    a graded function without a test or missing from COURSE, a function over a quarter of its task's
    points."""
    found = []
    course = {task: exercises for task, exercises in course.items() if (root / task).is_dir()}
    for row in rows:
        if task_of(row["nodeid"]) is not None and row.get("function") is None:
            found.append(f"{row['nodeid']}: name its graded function, @pytest.mark.points(n, function=...)")
    by_task = points(rows)
    for task, exercises in course.items():
        listed = [e.function for e in exercises]
        expected = set(files_of(task, graded)) | {NOTEBOOK}
        found += [f"{task}: {name} is graded (release.GRADED) but not in tools/course.py's COURSE"
                  for name in sorted(expected - set(listed))]
        found += [f"{task}: COURSE lists {name}, which is not a graded function" for name in sorted(set(listed) - expected)]
        tested = by_task.get(task, {})
        found += [f"{task}: {name} has no graded test" for name in listed if name in expected and name not in tested]
        found += [f"{task}: tests name {name}, which is not one of its graded functions"
                  for name in sorted(set(tested) - expected)]
        total = sum(sum(levels.values()) for levels in tested.values())
        for name, levels in tested.items():
            if sum(levels.values()) > MAX_SHARE * total:
                found.append(f"{task}: {name} carries {sum(levels.values()):g} of {total:g} points, over a quarter")
    return found


def summary(rows: list[dict]) -> str:
    """Points per task and per level, and each task's heaviest function (release check's printout)."""
    lines = []
    for task, functions in sorted(points(rows).items()):
        core = sum(levels["core"] for levels in functions.values())
        stretch = sum(levels["stretch"] for levels in functions.values())
        name, levels = max(functions.items(), key=lambda item: sum(item[1].values()))
        lines.append(f"{task}: {core + stretch:g} points: core {core:g}, stretch {stretch:g}; the heaviest function "
                     f"{name} carries {sum(levels.values()):g} ({sum(levels.values()) / (core + stretch):.1%}, at most "
                     f"{MAX_SHARE:.0%})")
    return "\n".join(lines)


def release_problems(dest: Path, root: Path = REPO_ROOT) -> list[str]:
    """What a built release must hold: for each task ``root`` has, its handout and its notebook's answer
    cells (present and empty); and nothing of the instructors' key."""
    import answers
    found = [f"the release holds {path.relative_to(dest)}, an instructors-only file"
             for prefix in release.INSTRUCTORS_ONLY if (path := dest / prefix.rstrip("/")).exists()]
    for task in (task for task in COURSE if (root / task).is_dir()):
        if not handout(dest, task).is_file():
            found.append(f"the release has no {task}/HANDOUT.md")
        notebook = dest / task / f"{task}.ipynb"
        answer_cells = answers.answer_cells(notebook) if notebook.is_file() else []
        if not 8 <= len(answer_cells) <= 12:
            found.append(f"{task}/{task}.ipynb has {len(answer_cells)} answer cells; a task has 8 to 12 written questions")
        found += [f"{task}/{task}.ipynb: an answer cell is not empty in the release ({text[:40]!r})"
                  for text in answer_cells if text.strip() != answers.PLACEHOLDER]
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".ipynb") and ANSWER_KEY_MARK in path.read_text():
            found.append(f"{path.relative_to(dest)} holds answer-key text ({ANSWER_KEY_MARK!r})")
    return found


def _dots(n: int) -> str:
    return "●" * n + "○" * (5 - n)


def _hours(minutes: int) -> str:
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:g} h"


def check_command(task: str, function: str) -> str:
    if function == NOTEBOOK:
        return f"`pytest tests/test_notebooks.py -k {task}`"
    return f"`pytest -k grades_{function.split('.')[0]}`"


def table(task: str, rows: list[dict], course: dict[str, list[Exercise]] = COURSE) -> str:
    """The handout's markdown table of ``task``'s functions, then its totals."""
    tested, files = points(rows).get(task, {}), files_of(task)
    lines = ["| # | function | file | core points | stretch points | difficulty | importance | time | check it |",
             "|---|---|---|---|---|---|---|---|---|"]
    for number, e in enumerate(course[task], 1):
        levels = tested.get(e.function, {"core": 0.0, "stretch": 0.0})
        where = f"`{files[e.function]}`" if e.function in files else f"`{task}/{task}.ipynb`"
        name = "the notebook runs top to bottom" if e.function == NOTEBOOK else f"`{e.function}`"
        time = _hours(e.minutes) + (f" + {_hours(e.stretch_minutes)} stretch" if e.stretch_minutes else "")
        stretch = f"{levels['stretch']:g}" if levels["stretch"] else "-"
        lines.append(f"| {number} | {name} | {where} | {levels['core']:g} | {stretch} | "
                     f"{_dots(e.difficulty)} | {_dots(e.importance)} | {time} | {check_command(task, e.function)} |")
    core = sum(levels["core"] for levels in tested.values())
    stretch = sum(levels["stretch"] for levels in tested.values())
    minutes = sum(e.minutes for e in course[task])
    extra = sum(e.stretch_minutes for e in course[task])
    lines += ["", f"Autograded: **{core + stretch:g} points** ({core:g} core, {stretch:g} stretch), hidden tests "
                  f"included. Estimated time: **about {minutes / 60:.0f} h** of core work"
                  + (f", {_hours(extra)} more for the stretch tests." if extra else ".")]
    return "\n".join(lines)


def render(text: str, task: str, rows: list[dict]) -> str:
    """``text`` (a handout) with its table between the TABLE markers replaced."""
    start, end = text.find(TABLE[0]), text.find(TABLE[1])
    if start < 0 or end < start:
        raise ValueError(f"the {task} handout has no {TABLE[0]} ... {TABLE[1]} block")
    return text[: start + len(TABLE[0])] + "\n" + table(task, rows) + "\n" + text[end:]


def handout(root: Path, task: str) -> Path:
    return root / task / "HANDOUT.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a table is stale or a rule broken")
    args = parser.parse_args(argv)
    rows = release.graded_rows(REPO_ROOT)
    print(summary(rows))
    found = problems(rows)
    for task in COURSE:
        path = handout(REPO_ROOT, task)
        text = path.read_text()
        new = render(text, task, rows)
        if new != text:
            if args.check:
                found.append(f"{path.relative_to(REPO_ROOT)}: its table is stale - run python tools/course.py")
            else:
                path.write_text(new)
                print(f"updated {path.relative_to(REPO_ROOT)}")
    for problem in found:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
