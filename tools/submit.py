"""``make submit``: one archive of what a student hands in, and a list of what it holds.

    python tools/submit.py [--out submission.zip]

It holds the graded files (tools/release.py's GRADED), the task notebooks as the student left them
(their written answers), and from ``runs/<task>/`` the executed notebooks, figures and metrics.json
that ``make run`` wrote - the evidence the written answers cite. ``runs/`` is git-ignored, so a
repository push alone would not carry them. Large or binary run artefacts (checkpoints, caches) stay
out. Upload the archive to Gradescope (its autograder finds the graded files in it) or attach it
to the course's submission.
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import answers  # noqa: E402
import release  # noqa: E402

RUN_SUFFIXES = (".ipynb", ".png", ".pdf", ".svg", ".json", ".csv", ".md", ".txt")
MAX_RUN_FILE_BYTES = 20 * 2 ** 20
TASKS = ("task1", "task2", "task3")


def contents(root: Path) -> tuple[list[str], list[str]]:
    """(files to archive, relative to ``root``; what is missing, in words)."""
    files, missing = [], []
    for rel in release.GRADED:
        (files if (root / rel).is_file() else missing).append(rel)
    for task in TASKS:
        notebook = f"{task}/{task}.ipynb"
        if (root / notebook).is_file():
            files.append(notebook)
        runs = root / "runs" / task
        produced = sorted(p for p in runs.rglob("*") if p.is_file() and p.suffix in RUN_SUFFIXES
                          and p.stat().st_size <= MAX_RUN_FILE_BYTES) if runs.is_dir() else []
        files += [str(p.relative_to(root)) for p in produced]
        if not (runs / f"{task}.ipynb").is_file():
            missing.append(f"runs/{task}/{task}.ipynb (run `make run` first: the executed notebook is the evidence)")
        if not (runs / "metrics.json").is_file():
            missing.append(f"runs/{task}/metrics.json")
    return files, missing


def submit(root: Path, out: Path) -> dict:
    """Write the archive ``out``; returns {"archive", "files", "missing", "profiles", "answered": {task:
    (answered, asked)}}."""
    files, missing = contents(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in files:
            archive.write(root / rel, rel)
    profiles = {}
    for task in TASKS:
        try:
            profiles[task] = json.loads((root / "runs" / task / "metrics.json").read_text()).get("profile")
        except (OSError, ValueError, AttributeError):
            continue
    answered = {task: (sum(bool(q["answer"]) for q in rows), len(rows)) for task, rows in answers.collect(root).items()}
    return {"archive": str(out), "files": files, "missing": missing, "profiles": profiles, "answered": answered}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=release.REPO_ROOT / "submission.zip")
    parser.add_argument("--root", type=Path, default=release.REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    summary = submit(args.root.resolve(), args.out.resolve())
    print(f"wrote {summary['archive']} ({len(summary['files'])} files):")
    for rel in summary["files"]:
        print(f"  {rel}")
    for task, profile in summary["profiles"].items():
        print(f"{task}: notebook run in the {profile} profile")
    for task, (done, asked) in summary["answered"].items():
        print(f"{task}: {done} of {asked} written questions answered")
    if summary["missing"]:
        print("missing:\n  " + "\n  ".join(summary["missing"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
