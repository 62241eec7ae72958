"""Grading harness: ``@pytest.mark.points(n)`` tests, a grade table after every run, grades.json.

``@pytest.mark.points(n, function="beam_search", level="stretch")``: ``function`` names the graded
function the test is for (the handouts' tables and the one-quarter rule count points by it, see
tests/test_pa5_course.py); ``level`` is "core" (the default) or "stretch".

A graded test earns its points only if its setup, call and teardown all pass; one that is
collected but never runs to the end counts as failed. The table groups
tests by the task in their file name (``tests/test_task1_*.py`` -> task1; ``test_notebooks.py`` ->
notebooks; everything else -> pa5).

A test that loads one of the tiny profile's stand-ins (itself, through a recipe in the worker, or in a
notebook's kernel) asks for its session fixture - ``smollm2_standin``, ``mini_orca_standin``,
``cifar100_standin``, ``imagenet_standin``: each is built (or verified in the cache) once per run, in the
order the tests need them, during a test's set-up - outside every time limit - and the run ends with
each one's build time, so a slow run says where its time went.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

_GROUP = re.compile(r"test_(task[123]|notebooks)")
_grades: dict[str, dict] = {}  # nodeid -> {"nodeid", "points", "function", "level", "passed"}
LEVELS = ("core", "stretch")


def pytest_addoption(parser):
    parser.addoption("--grades-json", default=None, metavar="PATH",
                     help="write {earned, possible, tests: [...]} for the graded tests to PATH")
    parser.addoption("--student", default=None, metavar="DIR",
                     help="run the student functions from DIR's modules in the worker (default: this checkout)")
    parser.addoption("--isolate-student", action="store_true",
                     help="the worker runs isolated (base interpreter, -I -S, the site-packages view of "
                          "--site-packages) and must not reach the --forbid folders")
    parser.addoption("--site-packages", default=None, metavar="DIR", help="the isolated worker's site-packages")
    parser.addoption("--forbid", action="append", default=[], metavar="DIR",
                     help="a folder the isolated worker's import system must not reach (repeatable)")
    parser.addoption("--call-timeout", type=float, default=None, metavar="S",
                     help="seconds one student call may run before its worker is stopped (default: pa5.worker's)")
    parser.addoption("--test-timeout", type=float, default=900.0, metavar="S",
                     help="seconds one test may run, its student calls included (default 900)")


def pytest_configure(config):
    _require_modules_from(config.rootpath)
    config.addinivalue_line("markers", "points(n): a graded test worth n points")
    config.addinivalue_line("markers", "notebook: executes a notebook top to bottom (slow; runs last)")


def _require_modules_from(root):
    """Grading a checkout must import that checkout's code, not an installed copy from elsewhere
    (e.g. the instructors' solutions installed editable in the same environment)."""
    for package in ("pa5", "task1", "task2", "task3"):
        if not (root / package / "__init__.py").exists():
            continue
        spec = importlib.util.find_spec(package)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin is not None and not origin.is_relative_to(root.resolve()):
            raise pytest.UsageError(f"`import {package}` finds {origin}, outside this checkout {root}: "
                                    f"install this checkout (`make setup`) or set PYTHONPATH={root}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = item.get_closest_marker("points")
        if marker is None:
            continue
        if len(marker.args) != 1 or not isinstance(marker.args[0], (int, float)) or marker.args[0] <= 0:
            raise pytest.UsageError(f"{item.nodeid}: use @pytest.mark.points(n) with one positive number")
        function, level = marker.kwargs.get("function"), marker.kwargs.get("level", "core")
        if set(marker.kwargs) - {"function", "level"} or level not in LEVELS or not (
                function is None or isinstance(function, str) and function):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.points(n, function=\"name\", level=\"core\" or "
                                    f"\"stretch\"), got {marker.kwargs}")
        item.user_properties.append(("points", marker.args[0]))  # also lands in the JUnit XML
        item.user_properties += [("function", function), ("level", level)]
        if function is not None:  # `pytest -k grades_beam_search`: the handouts' command per function
            item.extra_keyword_matches.add("grades_" + function.split(".")[0])
    # Notebooks last: they are slow end-to-end checks, and unit failures explain them better.
    items.sort(key=lambda item: item.get_closest_marker("notebook") is not None)


def pytest_collection_finish(session):
    # Every selected graded test is on the table from the start, as failed until it passes: a test
    # that never reports (an interrupted run; --collect-only) is not silently dropped from the total.
    for item in session.items:
        properties = dict(item.user_properties)
        if properties.get("points") is not None:
            _grades[item.nodeid] = {"nodeid": item.nodeid, "points": properties["points"],
                                    "function": properties["function"], "level": properties["level"], "passed": False}


_standin_builds: dict[str, dict] = {}  # stand-in name -> {"seconds", "cached", "for": the test that first needed it}


def _standin(name: str) -> Path:
    """Stand-in ``name``'s folder, built now if it is not cached; the time it took is recorded."""
    from pa5 import standins

    cached = standins.is_cached(name)
    started = time.perf_counter()
    folder = standins.get(name)
    _standin_builds[name] = {"seconds": time.perf_counter() - started, "cached": cached,
                             "for": os.environ.get("PYTEST_CURRENT_TEST", "?").removesuffix(" (setup)")}
    return folder


def _standin_fixture(name: str):
    @pytest.fixture(scope="session", name=f"{name}_standin")
    def built() -> Path:
        return _standin(name)
    return built


smollm2_standin, mini_orca_standin, cifar100_standin, imagenet_standin = map(
    _standin_fixture, ("smollm2", "mini_orca", "cifar100", "imagenet"))


@pytest.fixture(scope="session")
def student(request):
    """The worker running the student's code (pa5.worker.Student): the graded tests call student
    functions only through it and never import a graded module themselves."""
    from pa5.worker import Student

    config = request.config
    log = Path(config.getoption("--student") or config.rootpath) / ".pa5-worker.log"
    worker = Student(config.getoption("--student") or config.rootpath, isolated=config.getoption("--isolate-student"),
                     forbidden=tuple(config.getoption("--forbid")),
                     site_packages=config.getoption("--site-packages"),
                     log=log if config.getoption("--isolate-student") else None,
                     fallbacks=_fallbacks(config.rootpath),
                     **({} if config.getoption("--call-timeout") is None else
                        {"call_timeout": config.getoption("--call-timeout")}))
    yield worker
    worker.close()


def _fallbacks(root: Path) -> dict[str, str] | None:
    """The handed-out graded files the worker falls back to for a student file that does not import
    (pa5.worker, "Isolation between files"), made by tools/release.py from the instructors' files.
    None in a student release: its graded files are the student's own, and a student running the
    tests sees a broken file's error directly."""
    release = root / "tools" / "release.py"
    if not release.exists():
        return None
    spec = importlib.util.spec_from_file_location("_pa5_release", release)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return None if (root / module.RELEASE_STAMP).exists() else module.fallback_sources(root)


@pytest.fixture(autouse=True)
def _fresh_worker_objects(request):
    """Objects built in the worker live for one test (see Student.forget)."""
    yield
    if "student" in request.fixturenames:
        request.getfixturevalue("student").forget()


class TestTimeLimit(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A per-test limit on the graded tests (SIGALRM, main thread): a student call has its own,
    shorter limit in the worker. Ungraded checks (the full-profile rehearsal, ~14 min) run unlimited."""
    limit = item.config.getoption("--test-timeout")
    # notebooks have pa5.execute's own cell and notebook limits (task 1's tiny run alone is ~9.5 min)
    if item.get_closest_marker("points") is None or item.get_closest_marker("notebook") is not None:
        yield
        return

    def expire(signum, frame):
        raise TestTimeLimit(f"{item.nodeid} ran past --test-timeout={limit:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_failed_a_phase: set[str] = set()


def pytest_runtest_logreport(report):
    row = _grades.get(report.nodeid)
    if row is None:
        return
    if report.failed or report.skipped:  # any phase: setup, call or teardown
        _failed_a_phase.add(report.nodeid)
        row["passed"] = False
    elif report.when == "call" and report.nodeid not in _failed_a_phase:
        row["passed"] = True


def _rows_by_group(rows):
    groups = defaultdict(list)
    for row in rows:
        match = _GROUP.search(row["nodeid"].split("::")[0])
        groups[match.group(1) if match else "pa5"].append(row)
    return dict(sorted(groups.items()))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    _report_standin_builds(terminalreporter)
    rows = list(_grades.values())
    if not rows or config.option.collectonly:
        return
    write = terminalreporter.write_line
    terminalreporter.section("grade table")
    width = max(len(r["nodeid"]) for r in rows)
    for group, group_rows in _rows_by_group(rows).items():
        earned, possible = _points(group_rows, passed=True), _points(group_rows)
        levels = [(level, [r for r in group_rows if r.get("level") == level]) for level in LEVELS]
        by_level = ", ".join(f"{level} {_points(rs, passed=True):g} / {_points(rs):g}" for level, rs in levels if rs)
        write(f"{group}: {earned:g} / {possible:g}" + (f" ({by_level})" if any(rs for _, rs in levels[1:]) else ""))
        for r in group_rows:
            write(f"  {'PASS' if r['passed'] else 'FAIL'}  {r['nodeid']:<{width}}  "
                  f"{r['points'] if r['passed'] else 0:g} / {r['points']:g}")
    write(f"TOTAL: {_points(rows, passed=True):g} / {_points(rows):g}", bold=True)


def _report_standin_builds(terminalreporter):
    if not _standin_builds:
        return
    from pa5.standins import standin_seed

    terminalreporter.section(f"stand-ins (PA5_STANDIN_SEED={standin_seed()})")
    for name, build in _standin_builds.items():
        how = "cached, verified" if build["cached"] else "built"
        terminalreporter.write_line(f"  {name:<10} {how} in {build['seconds']:.1f} s, before {build['for']}")


def _points(rows: list[dict], passed: bool = False) -> float:
    """The points of ``rows`` (only the passed ones if ``passed``), rounded: 0.4-point cases must not sum
    to 119.50000000000003 in grades.json."""
    return round(math.fsum(r["points"] for r in rows if r["passed"] or not passed), 6)


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--grades-json")
    if not path:
        return
    rows = list(_grades.values())
    grades = {
        "earned": _points(rows, passed=True),
        "possible": _points(rows),
        "tests": rows,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(grades, f, indent=2)
