"""The GitHub Classroom autograding workflow of the student release: one step per graded test function.

``release.check`` writes it into the release (``.github/workflows/classroom.yml``) from the release's
own collection of its visible graded tests, so it never names a hidden test and always matches the
handed-out tests. Classroom's command grader scores a step all or nothing: one step per test
function (its parametrised cases together, their points summed) keeps that close to pytest's own
points. The reporter sums the steps into the score Classroom shows.
"""
from __future__ import annotations

import json
import re
from collections import OrderedDict

STEP_TIMEOUT_MIN = 30  # a notebook step runs a whole tiny notebook (task 2 / 3: ~4-6 min on 2 cores)


def test_functions(tests: dict[str, float]) -> "OrderedDict[str, float]":
    """{"file::function": points summed over its parametrised cases}, in collection order."""
    functions: OrderedDict[str, float] = OrderedDict()
    for nodeid, points in tests.items():
        key = nodeid.split("[")[0]
        functions[key] = functions.get(key, 0) + points
    return functions


def _step_id(key: str) -> str:
    file, _, function = key.partition("::")
    return re.sub(r"[^a-z0-9]+", "-", f"{file.removeprefix('tests/test_').removesuffix('.py')}-{function}".lower()).strip("-")


def workflow(tests: dict[str, float]) -> str:
    """The workflow's YAML for the graded tests ``tests`` ({node id: points})."""
    functions = test_functions(tests)
    ids = [_step_id(key) for key in functions]
    if len(set(ids)) != len(ids):
        raise ValueError("two graded test functions map to one workflow step id")
    lines = ["# Written by tools/release.py (tools/classroom.py) from this release's visible graded tests.",
             "name: Autograding Tests", "'on':", "- push", "- repository_dispatch", "permissions:", "  checks: write",
             "  actions: read", "  contents: read", "jobs:", "  run-autograding-tests:", "    runs-on: ubuntu-latest",
             "    if: github.actor != 'github-classroom[bot]'", "    steps:", "    - name: Checkout code",
             "      uses: actions/checkout@v4"]
    for step, (key, points) in zip(ids, functions.items()):
        lines += [f"    - name: {json.dumps(key)}", f"      id: {step}",
                  "      uses: classroom-resources/autograding-command-grader@v1", "      with:",
                  f"        test-name: {json.dumps(key)}", "        setup-command: make setup",
                  f"        command: {json.dumps(f'PA5_PROFILE=tiny .venv/bin/python -m pytest -q -m points {key!s}')}",
                  f"        timeout: {STEP_TIMEOUT_MIN}", f"        max-score: {points:g}"]
    lines += ["    - name: Autograding Reporter", "      uses: classroom-resources/autograding-grading-reporter@v1",
              "      env:"]
    lines += [f"        {step.upper()}_RESULTS: \"${{{{steps.{step}.outputs.result}}}}\"" for step in ids]
    lines += ["      with:", f"        runners: {','.join(ids)}"]
    return "\n".join(lines) + "\n"
