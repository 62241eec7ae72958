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
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # pa5.worker
sys.path.insert(0, str(Path(__file__).resolve().parent))  # classroom
DEFAULT_DEST = REPO_ROOT / "dist" / "student"
SOLUTIONS_DEST = REPO_ROOT / "dist" / "solutions"  # build --solutions: the release with its solutions, after the deadline
CLASSROOM_WORKFLOW = ".github/workflows/classroom.yml"  # written into the release by check (tools/classroom.py)
RELEASE_STAMP = ".student-release"  # in a release's root: this checkout is a handout, not the solutions

# Never in the release: the rubric and answer key, and the tests of the course's own shape (they
# read the key and the hidden tests' points, tools/course.py).
INSTRUCTORS_ONLY = ("instructors/", "tests/test_pa5_course.py")

SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")

# The audit: the functions a student implements. The build refuses a repository whose solution
# blocks sit anywhere else, so adding or removing a block is a decision recorded here.
GRADED = {
    "task1/decoding.py": ["top_k_filter", "top_p_filter", "min_p_filter", "typical_filter", "penalize_repetition",
                          "ban_repeated_ngrams", "_one_token_at_a_time", "greedy_search", "sample", "beam_search"],
    "task1/metrics.py": ["distinct_n", "repetition_rate", "longest_repeated_span"],
    "task2/reward_model.py": ["bradley_terry_loss", "last_token_index", "token_scores"],
    "task2/policy.py": ["selective_logps", "token_logps", "token_kl", "kl_estimate"],
    "task2/dpo.py": ["dpo_loss"],
    "task2/ppo.py": ["compute_gae", "masked_whiten", "token_rewards", "policy_loss", "value_loss", "ppo_update"],
    "task2/grpo.py": ["group_advantages", "grpo_loss", "grpo_update"],
    "task2/overoptimisation.py": ["best_of_n_weights"],
    "task2/reward_analysis.py": ["calibration"],
    "task3/usae.py": ["usae_loss", "usae_step", "usae_epoch"],
    "task3/universality.py": ["firing_counts", "firing_entropy", "cofire_proportion", "r2_global_mean",
                              "r2_variance_weighted", "concept_energy"],
    "task3/visualize.py": ["concept_objective.objective", "maximise"],
}

# What a pytest run may return when tests ran: 0 all passed, 1 some failed.
_TESTS_RAN = (0, 1)


# --------------------------------------------------------------------------- source transforms
# Lines are split on "\n" only, as Python's tokenizer counts them (str.splitlines also breaks on
# form feeds and other characters, which would shift line numbers against the AST).
def _comment_lines(source: str, path: str) -> dict[int, tuple[str, str]]:
    """{0-based line: (indentation, comment)} of the comments alone on their line. Comments only:
    marker text inside a string or docstring is not a marker."""
    lines = source.split("\n")
    found = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            row, column = token.start
            if token.type == tokenize.COMMENT and not lines[row - 1][:column].strip():
                found[row - 1] = (lines[row - 1][:column], token.string.rstrip())
    except (tokenize.TokenError, SyntaxError) as error:
        raise ValueError(f"{path}: does not tokenize ({error})") from error
    return found


def marked_regions(source: str, markers: tuple[str, str], path: str) -> list[tuple[int, int, str]]:
    """[(first line, last line, indentation)] of each marked region, 0-based and inclusive of the
    marker lines. Raises ValueError naming path:line for an unclosed, unopened or nested marker, an
    END indented unlike its BEGIN, or a comment that looks like a marker but is not exactly one."""
    keywords = [" ".join(marker.lstrip("# ").split()).upper() for marker in markers]
    regions, opened = [], None
    for number, (indent, comment) in sorted(_comment_lines(source, path).items()):
        if comment == markers[0]:
            if opened is not None:
                raise ValueError(f"{path}:{number + 1}: {markers[0]!r} inside the region opened at line {opened[0] + 1}")
            opened = (number, indent)
        elif comment == markers[1]:
            if opened is None:
                raise ValueError(f"{path}:{number + 1}: {markers[1]!r} without {markers[0]!r}")
            if indent != opened[1]:
                raise ValueError(f"{path}:{number + 1}: {markers[1]!r} is not indented like its {markers[0]!r} "
                                 f"(line {opened[0] + 1})")
            regions.append((opened[0], number, opened[1]))
            opened = None
        elif any(" ".join(comment.lstrip("# ").split()).upper().startswith(k) for k in keywords):
            raise ValueError(f"{path}:{number + 1}: {comment!r} is not exactly {markers[0]!r} or {markers[1]!r}")
    if opened is not None:
        raise ValueError(f"{path}:{opened[0] + 1}: {markers[0]!r} is never closed")
    return regions


def _enclosing_function(tree: ast.AST, line: int) -> tuple[str, ast.AST | None]:
    """(dotted name, node) of the innermost function whose body holds 1-based ``line``; ('', None)
    at module level. Methods are named without their class, as in GRADED."""
    names, body, function = [], tree, None
    while True:
        inner = [node for node in ast.iter_child_nodes(body)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and node.lineno < line <= node.end_lineno]
        if not inner:
            return ".".join(names), function
        body = inner[0]
        if not isinstance(body, ast.ClassDef):
            names.append(body.name)
            function = body


def _names_set_inside_read_after(function: ast.AST, first: int, last: int) -> list[str]:
    """Names first assigned inside lines (first, last) (1-based) and read after them in ``function``:
    code after a stubbed block that would need the solution's own variables."""
    arguments = function.args
    before = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
    before |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    inside, after = set(), set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            (before if node.lineno < first else inside if node.lineno <= last else set()).add(node.id)
        elif isinstance(node, ast.Name) and node.lineno > last:
            after.add(node.id)
    return sorted((inside - before) & after)


def solution_functions(source: str, path: str) -> list[str]:
    """Names of the functions that hold a solution block, in file order. Each block must sit in one
    function body and leave nothing after it that reads a variable only the block sets."""
    regions = marked_regions(source, SOLUTION, path)
    tree = _parse(source, path)
    code_lines = {node.lineno for node in ast.walk(tree) if isinstance(node, ast.stmt)}
    names = []
    for first, last, _ in regions:
        name, function = _enclosing_function(tree, first + 1)
        if function is None:
            raise ValueError(f"{path}:{first + 1}: a solution block must sit inside a function body")
        inside = [line for line in code_lines if first + 1 < line < last + 1]
        if not inside:
            raise ValueError(f"{path}:{first + 1}: an empty solution block")
        if _enclosing_function(tree, max(inside))[0] != name:
            raise ValueError(f"{path}:{last + 1}: the solution block opened at line {first + 1} in {name} "
                             f"ends in another function")
        leaking = _names_set_inside_read_after(function, first + 1, last + 1)
        if leaking:
            raise ValueError(f"{path}:{last + 1}: code after the solution block of {name} reads "
                             f"{', '.join(leaking)}, set only inside the block: move that code into the block")
        names.append(name)
    return names


STUB = 'raise NotImplementedError("{path}: {name} - your code here")'
# The handed-out version the worker falls back to when a student's file does not import (pa5.worker).
FALLBACK = 'raise ImportError("{path} does not import, so {name} is unavailable - " + __pa5_import_error__)'


def stub_solutions(source: str, path: str, statement: str = STUB) -> str:
    """``source`` with every solution block (markers included) replaced by one ``statement``
    (formatted with the file's ``path`` and the function's ``name``) at the block's indentation."""
    names = solution_functions(source, path)
    lines = source.split("\n")
    for (first, last, indent), name in reversed(list(zip(marked_regions(source, SOLUTION, path), names))):
        lines[first:last + 1] = [indent + statement.format(path=path, name=name)]
    stubbed = "\n".join(lines)
    _parse(stubbed, path, "stubbing its solutions")
    return stubbed


def fallback_sources(root: Path) -> dict[str, str]:
    """{graded module: its handed-out source, graded functions raising FALLBACK} from ``root`` (the
    graded files it has: a sample repository in the tests has others)."""
    return {path.removesuffix(".py").replace("/", "."): stub_solutions((root / path).read_text(), path, FALLBACK)
            for path in GRADED if (root / path).is_file()}


def strip_hidden_tests(source: str, path: str) -> str:
    """``source`` without its hidden-test regions (markers included)."""
    lines = source.split("\n")
    for first, last, _ in reversed(marked_regions(source, HIDDEN_TESTS, path)):
        del lines[first:last + 1]
    stripped = "\n".join(lines)
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
    """The files git tracks (a scratch file beside them, say an old solution copy, never ships);
    untracked files git does not ignore are named on stderr, as they are left out."""
    def git_files(*flags):
        listed = subprocess.run(["git", "ls-files", *flags, "-z"], cwd=root, check=True, capture_output=True,
                                text=True).stdout
        return sorted(p for p in set(listed.split("\0")) if p and (root / p).is_file())

    untracked = git_files("--others", "--exclude-standard")
    if untracked:
        print(f"left out (not tracked by git): {', '.join(untracked)}", file=sys.stderr)
    return git_files("--cached")


def _notebook_has_solution_block(path: Path) -> bool:
    """Line by line, not tokenized: cells may hold IPython syntax (``%magic``, ``!shell``)."""
    cells = json.loads(path.read_text()).get("cells", [])
    return any(line.strip() in SOLUTION for cell in cells for line in "".join(cell.get("source", "")).split("\n"))


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


def build(root: Path = REPO_ROOT, dest: Path = DEFAULT_DEST, graded: dict[str, list[str]] = GRADED,
          solutions: bool = False) -> dict:
    """Write the student release of ``root`` to ``dest`` (replaced). Returns a summary.

    ``solutions``: the solutions build an instructor publishes after the deadline - the same release
    with the solution blocks kept (hidden tests and the instructors' key still left out)."""
    if (root / RELEASE_STAMP).exists():
        raise ValueError(f"{root} is itself a student release; build from the instructors' repository")
    files = repository_files(root)
    graded = audit(root, files, graded)
    if dest.resolve() == root.resolve() or root.resolve().is_relative_to(dest.resolve()):
        raise ValueError(f"dest={dest} would hold the repository itself; choose a folder such as {DEFAULT_DEST}")
    if dest.exists():
        if any(dest.iterdir()) and not (dest / RELEASE_STAMP).exists():
            raise ValueError(f"dest={dest} is not empty and not an earlier release: refusing to replace it")
        shutil.rmtree(dest)
    hidden = 0
    files = [rel for rel in files if not rel.startswith(INSTRUCTORS_ONLY)]
    for rel in files:
        source, target = root / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in graded and not solutions:
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
    return {"dest": str(shown), "files": len(files), "stubbed": 0 if solutions else sum(map(len, graded.values())),
            "hidden_regions": hidden}


# --------------------------------------------------------------------------- grading
# Limits of one grading run (README, "Grading"): a student call, a test, the whole run.
CALL_TIMEOUT_S = 120
TEST_TIMEOUT_S = 900
RUN_TIMEOUT_S = 45 * 60
_PASSED_LINE = re.compile(r"^PASSED (\S+)", re.MULTILINE)
_SUMMARY_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


def run_graded_tests(checkout: Path, grades_json: Path, tests: list[str] | None = None, quiet: bool = True,
                     collect_only: bool = False, worker: list[str] = (), timeout: float = RUN_TIMEOUT_S) -> dict:
    """``make grade``'s pytest run (graded tests only) in ``checkout`` with this interpreter, importing
    the checkout's own modules (PYTHONPATH; tests/conftest.py refuses any other). A test file that
    fails to import is reported and the others still run. ``worker``: conftest options for the
    student worker. ``quiet``: no failure reports, output kept back unless pytest could not run.
    Returns grades.json's content, with "passed_reported": the passed count of pytest's own summary."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-m", "points", "-p", "no:cacheprovider", "--continue-on-collection-errors",
               f"--grades-json={grades_json}", *(["-q", "--tb=no", "-rp"] if quiet else ["-rfEp"]), *worker,
               *(["--collect-only"] if collect_only else []), *(tests or [])]
    try:
        result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"grading {checkout} ran past its limit of {timeout:g} s") from None
    if not quiet:
        print(result.stdout, end=""), print(result.stderr, end="", file=sys.stderr)
    if result.returncode not in _TESTS_RAN or not grades_json.exists():
        raise RuntimeError(f"pytest in {checkout} did not run the tests (exit {result.returncode})"
                           + (f":\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}" if quiet else ""))
    grades = json.loads(grades_json.read_text())
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    grades["passed_reported"] = sum(int(n) for n, word in _SUMMARY_COUNT.findall(summary) if word == "passed")
    # pytest's own short summary (-rp) on our pipe: no file the student side could reach
    grades["passed_listed"] = sorted(set(_PASSED_LINE.findall(result.stdout)))
    return grades


def graded_rows(root: Path) -> list[dict]:
    """``root``'s graded tests (collection only): [{"nodeid", "points", "function", "level"}]."""
    with tempfile.TemporaryDirectory(prefix="pa5-collect-") as scratch:
        rows = run_graded_tests(root, Path(scratch) / "grades.json", collect_only=True)["tests"]
    return [{key: row.get(key) for key in ("nodeid", "points", "function", "level")} for row in rows]


def graded_tests(root: Path) -> dict[str, float]:
    """{node id: points} of ``root``'s graded tests (collection only)."""
    return {row["nodeid"]: row["points"] for row in graded_rows(root)}


def _worker_folder(root: Path, checkout: Path, dest: Path, graded_functions: dict[str, list[str]]) -> None:
    """What the worker and the notebook kernel may see: the given modules, the notebooks and the
    student's graded files - no tests (the hidden ones least of all), nothing else of ``root``."""
    for rel in repository_files(root):
        if rel.startswith(("tests/", "tools/", ".")) or not rel.endswith((".py", ".ipynb")):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2((checkout if rel in graded_functions else root) / rel, dest / rel)


def total_points(rows: list[dict], passed: bool = False) -> float:
    """The points of grade rows (only the passed ones if ``passed``), rounded so that 0.4-point cases
    do not sum to 119.50000000000003 in grades.json and Gradescope's results.json."""
    return round(math.fsum(r["points"] for r in rows if r["passed"] or not passed), 6)


def grade(checkout: Path, out: Path, root: Path = REPO_ROOT, expected: dict[str, float] | None = None,
          quiet: bool = True, graded_functions: dict[str, list[str]] = GRADED, call_timeout: float = CALL_TIMEOUT_S,
          test_timeout: float = TEST_TIMEOUT_S, run_timeout: float = RUN_TIMEOUT_S, junit: Path | None = None) -> dict:
    """Grade a student's ``checkout`` with ``root``'s tests, hidden ones included.

    The tests run from ``root`` itself - the instructors' tests, conftest and code, in a process that
    never imports a student module: nothing a student changed besides the graded files (a
    conftest.py, pytest.ini, an edited test) takes part. The student functions the tests call run in
    an isolated worker (pa5.worker), and the notebooks in an isolated kernel, from a scratch folder
    holding only the given modules, the notebooks and the student's graded files. Points come from
    ``expected`` ({node id: points}; default: ``root``'s own collection), never from a file the
    student side could write: a test counts as passed only where the run says so and pytest's own
    summary agrees with the count. One that did not run counts as failed. Limits (seconds): a student
    call ``call_timeout`` (its test fails, the next call gets a new worker), a test ``test_timeout``,
    the whole run ``run_timeout`` (RuntimeError; the scratch folder and the worker go with it).
    ``junit``: where pytest writes its JUnit XML (failure messages; never read for points)."""
    missing = [rel for rel in graded_functions if not (checkout / rel).is_file()]
    if missing:
        raise ValueError(f"{checkout} lacks the graded files {', '.join(missing)}")
    tests = None if expected is None else list(expected)
    expected = graded_tests(root) if expected is None else expected
    with tempfile.TemporaryDirectory(prefix="pa5-grade-") as scratch:
        scratch = Path(scratch)
        worker = scratch / "student"
        _worker_folder(root, checkout, worker, graded_functions)
        from pa5.worker import site_packages_view
        site = site_packages_view(scratch / "site-packages")
        options = [f"--student={worker}", "--isolate-student", f"--site-packages={site}",
                   f"--forbid={root.resolve()}", f"--forbid={Path(sys.prefix).resolve()}",
                   f"--call-timeout={call_timeout}", f"--test-timeout={test_timeout}",
                   *([f"--junitxml={junit}"] if junit is not None else [])]
        try:
            run = run_graded_tests(root, scratch / "results" / "grades.json", tests, quiet, worker=options,
                                   timeout=run_timeout)
        except RuntimeError:
            if tests is None:
                raise
            # a node id in a file that does not collect stops pytest (exit 4): run those files whole
            files = sorted({nodeid.split("::")[0] for nodeid in tests})
            run = run_graded_tests(root, scratch / "results" / "grades.json", files, quiet, worker=options,
                                   timeout=run_timeout)
    listed = set(run["passed_listed"])
    ran_passed = {row["nodeid"] for row in run["tests"] if row["passed"] is True} & listed
    if len(listed) != run["passed_reported"]:
        raise RuntimeError(f"grading {checkout}: pytest lists {len(listed)} passed tests, its "
                           f"summary {run['passed_reported']}: refusing a grade the runner does not confirm")
    passed = ran_passed & set(expected)
    rows = [{"nodeid": nodeid, "points": points, "passed": nodeid in passed} for nodeid, points in expected.items()]
    grades = {"earned": total_points(rows, passed=True), "possible": total_points(rows), "tests": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(grades, indent=2))
    return grades


def check(root: Path = REPO_ROOT, dest: Path = DEFAULT_DEST, solutions: Path | None = None,
          graded_functions: dict[str, list[str]] = GRADED) -> list[str]:
    """Build the release and grade it: the student's own tests (its grade table must read 0 of the
    total), then the hidden tests against the same stubs. With ``solutions`` (a grades.json of the
    solutions' run) every graded test must also have passed there. Returns the problems found."""
    import course
    problems = []
    if solutions is not None:
        solved = json.loads(solutions.read_text())
        catalog = solved["tests"]
        problems += [f"fails on the solutions: {row['nodeid']}" for row in solved["tests"] if not row["passed"]]
    else:
        catalog = graded_rows(root)
    graded = {row["nodeid"]: row["points"] for row in catalog}
    print(course.summary(catalog), flush=True)
    problems += course.problems(catalog, graded=graded_functions, root=root)
    summary = build(root, dest, graded_functions)
    print(f"built {summary['dest']}: {summary['files']} files, {summary['stubbed']} functions stubbed, "
          f"{summary['hidden_regions']} hidden-test regions removed", flush=True)
    problems += course.release_problems(dest, root)
    student = run_graded_tests(dest, dest.parent / "student-grades.json")  # kept out of the release
    visible = {row["nodeid"] for row in student["tests"]}
    import classroom
    (dest / CLASSROOM_WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
    (dest / CLASSROOM_WORKFLOW).write_text(classroom.workflow({row["nodeid"]: row["points"] for row in student["tests"]}))
    hidden = {nodeid: points for nodeid, points in graded.items() if nodeid not in visible}
    problems += [f"in the release but not graded on the solutions: {n}" for n in sorted(visible - set(graded))]
    print(f"student release: {student['earned']:g} / {student['possible']:g} points on "
          f"{len(visible)} visible graded tests", flush=True)
    rows = student["tests"]
    if hidden:
        hidden_rows = grade(dest, dest.parent / "hidden-grades.json", root, hidden,
                            graded_functions=graded_functions)["tests"]
        rows += hidden_rows
        print(f"hidden tests on the stubs: {total_points(hidden_rows, passed=True):g} / "
              f"{total_points(hidden_rows):g} points on {len(hidden_rows)} graded tests", flush=True)
    problems += [f"passes on the stubs: {row['nodeid']}" for row in rows if row["passed"]]
    problems += [f"graded on the solutions, never run on the stubs: {n}"
                 for n in sorted(set(graded) - {row['nodeid'] for row in rows})]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="write the student release")
    build_parser.add_argument("--dest", type=Path, help=f"default: {DEFAULT_DEST} ({SOLUTIONS_DEST} with --solutions)")
    build_parser.add_argument("--solutions", action="store_true",
                              help="keep the solutions: the build to publish after the deadline")
    check_parser = commands.add_parser("check", help="build, then require every graded test to fail on the stubs")
    check_parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    check_parser.add_argument("--solutions", type=Path, help="grades.json of the solutions' test run")
    grade_parser = commands.add_parser("grade", help="grade a student's checkout with these tests")
    grade_parser.add_argument("checkout", type=Path)
    grade_parser.add_argument("--out", type=Path, help="default: CHECKOUT/grades.json")
    args = parser.parse_args(argv)

    if args.command == "build":
        dest = args.dest or (SOLUTIONS_DEST if args.solutions else DEFAULT_DEST)
        print(json.dumps(build(REPO_ROOT, dest.resolve(), solutions=args.solutions), indent=2))
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
