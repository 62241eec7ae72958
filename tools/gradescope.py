"""A Gradescope autograder for PA5: the instructors' tests grade a submission through ``release.grade``.

    python tools/gradescope.py build [--dest DIR]       # DIR/ and DIR.zip: upload the zip to Gradescope
    python tools/gradescope.py run SUBMISSION RESULTS   # what the bundle's run_autograder calls

Gradescope unpacks the zip into ``/autograder/source`` and runs ``setup.sh`` once when it builds the
image; per submission it unpacks the student's files into ``/autograder/submission`` and runs
``run_autograder``, which must write ``/autograder/results/results.json``:
``{"score", "output", "tests": [{"name", "score", "max_score", "output", "visibility"}]}``.

The bundle is this repository (solutions and hidden tests included: Gradescope never shows the
source to students) with those two scripts. A submission is a student checkout or the archive of
``make submit``, at the submission's root or one folder down; only its graded files are taken. A
graded file it lacks is graded as handed out (its tests fail, the rest are graded). Hidden tests are
reported with visibility ``after_due_date``.
"""
from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import release  # noqa: E402

DEFAULT_DEST = release.REPO_ROOT / "dist" / "gradescope"
GRADED_TABLE = "gradescope-graded.json"  # the bundle's copy of GRADED (a sample repository may pass its own)

SETUP = """#!/usr/bin/env bash
# Gradescope: runs once while the autograder image is built. The tiny profile (CPU, offline stand-ins).
set -euo pipefail
cd "$(dirname "$0")"
if command -v apt-get >/dev/null; then  # Gradescope's Ubuntu images may lack venv, make or git
    apt-get update && apt-get install -y python3 python3-venv make git
fi
make setup
PA5_PROFILE=tiny .venv/bin/python -m pa5.standins build   # once here, not per submission
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope: runs per submission. AUTOGRADER_ROOT and PA5_PYTHON only for testing the bundle offline.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$(dirname "$0")"
[ -d .git ] || { git init -q && git add -A; }   # release.grade lists the repository's files with git
mkdir -p "$ROOT/results"
PA5_PROFILE=tiny "${PA5_PYTHON:-.venv/bin/python}" tools/gradescope.py run "$ROOT/submission" "$ROOT/results/results.json"
"""


def build(root: Path = release.REPO_ROOT, dest: Path = DEFAULT_DEST,
          graded_functions: dict[str, list[str]] = release.GRADED) -> Path:
    """Write the bundle to ``dest`` (replaced) and ``dest``.zip; returns the zip."""
    if (root / release.RELEASE_STAMP).exists():
        raise ValueError(f"{root} is a student release: build the autograder from the instructors' repository")
    if dest.exists():
        if not (dest / GRADED_TABLE).exists():
            raise ValueError(f"dest={dest} exists and is not an earlier bundle: refusing to replace it")
        shutil.rmtree(dest)
    for rel in release.repository_files(root):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    for name, text in (("setup.sh", SETUP), ("run_autograder", RUN_AUTOGRADER)):
        (dest / name).write_text(text)
        (dest / name).chmod(0o755)
    (dest / GRADED_TABLE).write_text(json.dumps(graded_functions, indent=2))
    return Path(shutil.make_archive(str(dest), "zip", dest))


def find_checkout(submission: Path, graded_functions: dict[str, list[str]]) -> Path:
    """The folder of ``submission`` (itself or one level down) holding the most graded files."""
    candidates = [submission, *sorted(p for p in submission.iterdir() if p.is_dir())]
    return max(candidates, key=lambda folder: sum((folder / rel).is_file() for rel in graded_functions))


def hidden_test_names(root: Path) -> set[tuple[str, str]]:
    """{(test file, function name)} of the tests inside hidden-test regions."""
    hidden = set()
    for path in sorted((root / "tests").glob("test_*.py")):
        rel, source = str(path.relative_to(root)), path.read_text()
        regions = release.marked_regions(source, release.HIDDEN_TESTS, rel)
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and any(first < node.lineno - 1 < last for first, last, _ in regions):
                hidden.add((rel, node.name))
    return hidden


def failure_messages(junit: Path) -> dict[str, str]:
    """{node id: failure message} from pytest's JUnit XML (module-level tests)."""
    if not junit.exists():
        return {}
    messages = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        nodeid = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        for problem in (*case.findall("failure"), *case.findall("error")):
            messages[nodeid] = (problem.get("message") or problem.text or "")[:2000]
    return messages


def run(submission: Path, results: Path, root: Path = release.REPO_ROOT) -> dict:
    """Grade ``submission`` with ``root``'s tests; write Gradescope's results.json to ``results``."""
    table = root / GRADED_TABLE
    graded_functions = json.loads(table.read_text()) if table.exists() else release.GRADED
    found = find_checkout(submission, graded_functions)
    with tempfile.TemporaryDirectory(prefix="pa5-gradescope-") as scratch:
        checkout, missing = Path(scratch) / "checkout", []
        for rel in graded_functions:
            (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
            if (found / rel).is_file():
                shutil.copy2(found / rel, checkout / rel)
            else:  # graded as handed out: its tests fail, the others are graded
                missing.append(rel)
                (checkout / rel).write_text(release.stub_solutions((root / rel).read_text(), rel))
        junit = Path(scratch) / "junit.xml"
        grades = release.grade(checkout, Path(scratch) / "grades.json", root, graded_functions=graded_functions,
                               junit=junit)
        messages = failure_messages(junit)
    hidden = hidden_test_names(root)
    tests = []
    for row in grades["tests"]:
        file, _, name = row["nodeid"].partition("::")
        is_hidden = (file, name.split("[")[0]) in hidden
        tests.append({"name": row["nodeid"], "score": row["points"] if row["passed"] else 0.0,
                      "max_score": row["points"],
                      "output": "passed" if row["passed"] else messages.get(row["nodeid"], "failed (did not run to the end)"),
                      "visibility": "after_due_date" if is_hidden else "visible"})
    output = f"{grades['earned']:g} / {grades['possible']:g} points on {len(tests)} graded tests."
    if missing:
        output += f" Not in the submission (graded as handed out): {', '.join(missing)}."
    result = {"score": grades["earned"], "output": output, "visibility": "visible", "stdout_visibility": "hidden",
              "tests": tests}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="write the Gradescope bundle (a folder and its zip)")
    build_parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    run_parser = commands.add_parser("run", help="grade a submission into results.json")
    run_parser.add_argument("submission", type=Path)
    run_parser.add_argument("results", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        print(f"wrote {build(dest=args.dest.resolve())}: upload it as the assignment's autograder")
        return 0
    result = run(args.submission.resolve(), args.results.resolve())
    print(result["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
