"""The student release, and proof that every graded test can fail.

    python tools/release.py build                 # dist/student/: solutions stubbed, hidden tests removed
    python tools/release.py check [--solutions F] # build, then grade the stubs: every graded test must fail
    python tools/release.py grade CHECKOUT        # grade a student's checkout with these tests (hidden included)

Solutions live in the task modules between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; the
release replaces each block with ``raise NotImplementedError(...)`` at the block's indentation, so
signatures and docstrings stay. Tests between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``
are left out of the release and run only when an instructor grades with ``grade``. Notebooks are
copied as they are: they only call the modules.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO_ROOT / "dist" / "student"
RELEASE_STAMP = ".student-release"  # in a release's root: this checkout is a handout, not the solutions

SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")

# The audit: the functions a student implements. The build refuses a repository whose solution
# blocks sit anywhere else, so adding or removing a block is a decision recorded here.
GRADED = {
    "task1/decoding.py": ["top_k_filter", "top_p_filter", "_one_token_at_a_time", "greedy_search", "sample",
                          "beam_search"],
    "task1/metrics.py": ["distinct_n", "repetition_rate"],
    "task2/reward_model.py": ["bradley_terry_loss", "last_token_index", "token_scores"],
    "task2/dpo.py": ["token_logps", "dpo_loss", "token_kl"],
    "task2/ppo.py": ["compute_gae", "masked_whiten", "kl_estimate", "token_rewards", "policy_loss", "value_loss"],
    "task2/grpo.py": ["group_advantages", "grpo_loss"],
    "task3/usae.py": ["usae_loss", "usae_step"],
    "task3/universality.py": ["firing_counts", "firing_entropy", "cofire_proportion", "r2_global_mean",
                              "r2_variance_weighted", "concept_energy"],
    "task3/visualize.py": ["concept_objective.objective", "maximise"],
}

# What a pytest run may return when tests ran: 0 all passed, 1 some failed.
_TESTS_RAN = (0, 1)
_NOT_COPIED = {".git", ".venv", "dist", "runs", "__pycache__", ".pytest_cache", ".ipynb_checkpoints"}


# --------------------------------------------------------------------------- source transforms
def marked_regions(source: str, markers: tuple[str, str], path: str) -> list[tuple[int, int, str]]:
    """[(first line, last line, indentation)] of each marked region, 0-based and inclusive of the
    marker lines. Raises ValueError naming path:line for an unclosed, unopened or nested marker, or
    an END whose indentation differs from its BEGIN."""
    begin, end = (re.compile(rf"^([ \t]*){re.escape(m)}[ \t]*$") for m in markers)
    regions, opened = [], None
    for number, line in enumerate(source.splitlines()):
        if (match := begin.match(line)) is not None:
            if opened is not None:
                raise ValueError(f"{path}:{number + 1}: {markers[0]!r} inside the region opened at line {opened[0] + 1}")
            opened = (number, match.group(1))
        elif (match := end.match(line)) is not None:
            if opened is None:
                raise ValueError(f"{path}:{number + 1}: {markers[1]!r} without {markers[0]!r}")
            if match.group(1) != opened[1]:
                raise ValueError(f"{path}:{number + 1}: {markers[1]!r} is not indented like its {markers[0]!r} "
                                 f"(line {opened[0] + 1})")
            regions.append((opened[0], number, opened[1]))
            opened = None
    if opened is not None:
        raise ValueError(f"{path}:{opened[0] + 1}: {markers[0]!r} is never closed")
    return regions


def _enclosing_functions(tree: ast.AST, line: int) -> str:
    """Dotted name of the (nested) functions whose bodies hold 1-based ``line``; '' at module level."""
    names, body = [], tree
    while True:
        inner = [node for node in ast.iter_child_nodes(body)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and node.lineno < line <= node.end_lineno]
        if not inner:
            return ".".join(names)
        body = inner[0]
        if isinstance(body, ast.ClassDef):  # methods are named without their class, as in GRADED
            continue
        names.append(body.name)


def solution_functions(source: str, path: str) -> list[str]:
    """Names of the functions that hold a solution block, in file order."""
    regions = marked_regions(source, SOLUTION, path)
    tree = _parse(source, path)
    names = []
    for first, _, _ in regions:
        name = _enclosing_functions(tree, first + 1)
        if not name:
            raise ValueError(f"{path}:{first + 1}: a solution block must sit inside a function body")
        names.append(name)
    return names


def stub_solutions(source: str, path: str) -> str:
    """``source`` with every solution block (markers included) replaced by one
    ``raise NotImplementedError("<path>: <function> - your code here")`` at the block's indentation."""
    names = solution_functions(source, path)
    lines = source.splitlines(keepends=True)
    for (first, last, indent), name in reversed(list(zip(marked_regions(source, SOLUTION, path), names))):
        lines[first:last + 1] = [f'{indent}raise NotImplementedError("{path}: {name} - your code here")\n']
    stubbed = "".join(lines)
    _parse(stubbed, path, "stubbing its solutions")
    return stubbed


def strip_hidden_tests(source: str, path: str) -> str:
    """``source`` without its hidden-test regions (markers included)."""
    lines = source.splitlines(keepends=True)
    for first, last, _ in reversed(marked_regions(source, HIDDEN_TESTS, path)):
        del lines[first:last + 1]
    stripped = "".join(lines)
    _parse(stripped, path, "removing its hidden tests")
    return stripped


def _parse(source: str, path: str, after: str = "") -> ast.Module:
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        raise ValueError(f"{path}: does not parse{' after ' + after if after else ''} "
                         f"(line {error.lineno}: {error.msg})") from error


# --------------------------------------------------------------------------- the release
def repository_files(root: Path) -> list[str]:
    """Tracked files plus new files git does not ignore (so an uncommitted module is not forgotten)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                            check=True, capture_output=True, text=True).stdout
    return sorted(p for p in set(listed.split("\0")) if p and (root / p).is_file()
                  and not set(Path(p).parts) & _NOT_COPIED)


def _notebook_has_solution_block(path: Path) -> bool:
    cells = json.loads(path.read_text()).get("cells", [])
    return any(marked_regions("".join(cell.get("source", "")), SOLUTION, str(path)) for cell in cells)


def audit(root: Path, files: list[str], graded: dict[str, list[str]] = GRADED) -> dict[str, list[str]]:
    """{file: functions with solution blocks}; raises ValueError where that differs from ``graded``."""
    found = {}
    for rel in files:
        if rel.endswith(".py") and not rel.startswith("tests/"):
            names = solution_functions((root / rel).read_text(), rel)
            if names:
                found[rel] = names
        elif rel.endswith(".py") and marked_regions((root / rel).read_text(), SOLUTION, rel):
            raise ValueError(f"{rel}: solution blocks belong in the task modules; tests are never stubbed")
        elif rel.endswith(".ipynb") and _notebook_has_solution_block(root / rel):
            raise ValueError(f"{rel}: a notebook cell holds a solution block; notebooks are copied as they are, "
                             "so the solution would ship - move the code into a task module")
    if found != graded:
        problems = []
        for rel in sorted(set(found) | set(graded)):
            extra = sorted(set(found.get(rel, [])) - set(graded.get(rel, [])))
            missing = sorted(set(graded.get(rel, [])) - set(found.get(rel, [])))
            problems += [f"{rel}: {name} has a solution block but is not in GRADED" for name in extra]
            problems += [f"{rel}: {name} is in GRADED but has no solution block" for name in missing]
        raise ValueError("the solution blocks and tools/release.py's GRADED disagree:\n  " + "\n  ".join(problems
                         or ["same functions, different order or repeats"]))
    return found


def build(root: Path = REPO_ROOT, dest: Path = DEFAULT_DEST, graded: dict[str, list[str]] = GRADED) -> dict:
    """Write the student release of ``root`` to ``dest`` (replaced). Returns a summary."""
    if (root / RELEASE_STAMP).exists():
        raise ValueError(f"{root} is itself a student release; build from the instructors' repository")
    files = repository_files(root)
    graded = audit(root, files, graded)
    if dest.exists():
        shutil.rmtree(dest)
    hidden = 0
    for rel in files:
        source, target = root / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in graded:
            target.write_text(stub_solutions(source.read_text(), rel))
        elif rel.startswith("tests/") and rel.endswith(".py"):
            text = source.read_text()
            hidden += len(marked_regions(text, HIDDEN_TESTS, rel))
            target.write_text(strip_hidden_tests(text, rel))
        else:
            shutil.copy2(source, target)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    (dest / RELEASE_STAMP).write_text(f"built by tools/release.py from commit {commit.strip() or 'unknown'}\n")
    shown = dest.relative_to(root) if dest.is_relative_to(root) else dest
    return {"dest": str(shown), "files": len(files), "stubbed": sum(map(len, graded.values())), "hidden_regions": hidden}


# --------------------------------------------------------------------------- grading
def run_graded_tests(checkout: Path, grades_json: Path, tests: list[str] | None = None,
                     quiet: bool = True) -> dict:
    """``make grade``'s pytest run (graded tests only) in ``checkout`` with this interpreter, importing
    the checkout's own modules (PYTHONPATH; tests/conftest.py refuses any other). ``quiet``: no
    failure reports, output kept back unless pytest could not run. Returns grades.json's content."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-m", "points", "-p", "no:cacheprovider",
               f"--grades-json={grades_json}", *(["-q", "--tb=no", "-rN"] if quiet else []), *(tests or [])]
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=quiet, text=True)
    if result.returncode not in _TESTS_RAN or not grades_json.exists():
        raise RuntimeError(f"pytest in {checkout} did not run the tests (exit {result.returncode})"
                           + (f":\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}" if quiet else ""))
    return json.loads(grades_json.read_text())


def grade(checkout: Path, out: Path, root: Path = REPO_ROOT, tests: list[str] | None = None,
          quiet: bool = True) -> dict:
    """Grade a student's ``checkout`` with ``root``'s tests, hidden ones included: a copy of the
    checkout gets ``root``'s tests/ and pyproject.toml (what students cannot change), then runs."""
    with tempfile.TemporaryDirectory(prefix="pa5-grade-") as scratch:
        copy = Path(scratch) / "checkout"
        shutil.copytree(checkout, copy, ignore=lambda _, names: [n for n in names if n in _NOT_COPIED])
        shutil.rmtree(copy / "tests", ignore_errors=True)
        shutil.copytree(root / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(root / "pyproject.toml", copy / "pyproject.toml")
        grades = run_graded_tests(copy, Path(scratch) / "grades.json", tests, quiet)
    out.write_text(json.dumps(grades, indent=2))
    return grades


def collect_graded(root: Path) -> list[str]:
    """Node ids of the graded tests in ``root`` (collection only)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "points", "-p", "no:cacheprovider",
                             "--collect-only", "-q"], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"collecting {root}'s tests failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return [line for line in result.stdout.splitlines() if "::" in line]


def check(root: Path = REPO_ROOT, dest: Path = DEFAULT_DEST, solutions: Path | None = None,
          graded_functions: dict[str, list[str]] = GRADED) -> list[str]:
    """Build the release and grade it: the student's own tests (its grade table must read 0 of the
    total), then the hidden tests against the same stubs. With ``solutions`` (a grades.json of the
    solutions' run) every graded test must also have passed there. Returns the problems found."""
    problems = []
    if solutions is not None:
        solved = json.loads(solutions.read_text())
        graded = [row["nodeid"] for row in solved["tests"]]
        problems += [f"fails on the solutions: {row['nodeid']}" for row in solved["tests"] if not row["passed"]]
    else:
        graded = collect_graded(root)
    summary = build(root, dest, graded_functions)
    print(f"built {summary['dest']}: {summary['files']} files, {summary['stubbed']} functions stubbed, "
          f"{summary['hidden_regions']} hidden-test regions removed", flush=True)
    student = run_graded_tests(dest, dest.parent / "student-grades.json")  # kept out of the release
    visible = {row["nodeid"] for row in student["tests"]}
    hidden = [nodeid for nodeid in graded if nodeid not in visible]
    problems += [f"in the release but not graded on the solutions: {n}" for n in sorted(visible - set(graded))]
    print(f"student release: {student['earned']:g} / {student['possible']:g} points on "
          f"{len(visible)} visible graded tests", flush=True)
    rows = student["tests"]
    if hidden:
        hidden_grades = grade(dest, dest.parent / "hidden-grades.json", root, hidden)
        hidden_rows = [row for row in hidden_grades["tests"] if row["nodeid"] in set(hidden)]
        rows += hidden_rows
        print(f"hidden tests on the stubs: {sum(r['points'] for r in hidden_rows if r['passed']):g} / "
              f"{sum(r['points'] for r in hidden_rows):g} points on {len(hidden_rows)} graded tests", flush=True)
    problems += [f"passes on the stubs: {row['nodeid']}" for row in rows if row["passed"]]
    problems += [f"graded on the solutions, never run on the stubs: {n}"
                 for n in sorted(set(graded) - {row['nodeid'] for row in rows})]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="write the student release")
    build_parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    check_parser = commands.add_parser("check", help="build, then require every graded test to fail on the stubs")
    check_parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    check_parser.add_argument("--solutions", type=Path, help="grades.json of the solutions' test run")
    grade_parser = commands.add_parser("grade", help="grade a student's checkout with these tests")
    grade_parser.add_argument("checkout", type=Path)
    grade_parser.add_argument("--out", type=Path, help="default: CHECKOUT/grades.json")
    args = parser.parse_args(argv)

    if args.command == "build":
        print(json.dumps(build(REPO_ROOT, args.dest.resolve()), indent=2))
        return 0
    if args.command == "grade":
        checkout = args.checkout.resolve()
        grades = grade(checkout, (args.out or checkout / "grades.json").resolve(), quiet=False)
        print(f"{checkout}: {grades['earned']:g} / {grades['possible']:g}")
        return 0
    if (REPO_ROOT / RELEASE_STAMP).exists():
        print("a student release: the integrity check runs in the instructors' repository")
        return 0
    problems = check(REPO_ROOT, args.dest.resolve(), args.solutions)
    if problems:
        print("release integrity check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    solved = "passes on the solutions and " if args.solutions else ""
    print(f"release integrity check passed: every graded test {solved}fails on the stubs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
