"""The written questions: answer cells in the task notebooks, collected for grading by hand.

    python tools/answers.py CHECKOUT [--key] [--out answers.md]

In a notebook, a question is a markdown cell whose metadata holds ``{"pa5": {"question": "task1-q3",
"points": 2}}``; the markdown cell right after it, ``{"pa5": {"answer": "task1-q3"}}``, is the
student's answer cell (it ships holding only ``PLACEHOLDER``). This collects every answer of a
checkout or an unpacked ``make submit`` archive - from the task notebook, or from the executed copy
in ``runs/<task>/`` where the task notebook's cell is still empty - into one markdown file, question
by question. ``--key`` adds the instructors' rubric and answer key (``instructors/<task>.md``, never in
the student release) under each answer.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TASKS = ("task1", "task2", "task3")
PLACEHOLDER = "_Your answer here._"
KEY_FOLDER = "instructors"  # the rubric and answer key: left out of the student release (tools/release.py)
_KEY_SECTION = re.compile(r"^## (task[123]-q\d+)\b.*$", re.MULTILINE)
_POINTS = re.compile(r"\*\*Rubric \((\d+(?:\.\d+)?) points?\)\*\*")


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def questions(notebook: Path) -> list[dict]:
    """[{"id", "points", "question", "answer"}] of ``notebook``'s question cells, in order (answer:
    the text of the answer cell after it, stripped; "" where it still holds only the placeholder).
    ValueError names a question without its answer cell right after it, or an id used twice."""
    cells = json.loads(notebook.read_text()).get("cells", [])
    found, seen = [], set()
    for i, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("pa5", {})
        if "question" not in meta:
            continue
        qid = meta["question"]
        after = cells[i + 1] if i + 1 < len(cells) else {}
        if after.get("cell_type") != "markdown" or after.get("metadata", {}).get("pa5", {}).get("answer") != qid:
            raise ValueError(f"{notebook}: question {qid} must be followed by its markdown answer cell "
                             f'(metadata {{"pa5": {{"answer": "{qid}"}}}})')
        if qid in seen:
            raise ValueError(f"{notebook}: question id {qid} is used twice")
        seen.add(qid)
        answer = _text(after).strip()
        found.append({"id": qid, "points": meta["points"], "question": _text(cell).strip(),
                      "answer": "" if answer == PLACEHOLDER else answer})
    return found


def answer_cells(notebook: Path) -> list[str]:
    """The raw text of every answer cell (the release check: each must be exactly ``PLACEHOLDER``)."""
    cells = json.loads(notebook.read_text()).get("cells", [])
    return [_text(c) for c in cells if "answer" in c.get("metadata", {}).get("pa5", {})]


def key(root: Path, task: str) -> dict[str, dict]:
    """{question id: {"points", "text"}} of ``instructors/<task>.md``: one ``## task1-q3 ...`` section
    per question, whose first line after the heading is ``**Rubric (N points)**``."""
    text = (root / KEY_FOLDER / f"{task}.md").read_text()
    sections = list(_KEY_SECTION.finditer(text))
    out = {}
    for match, following in zip(sections, sections[1:] + [None]):
        body = text[match.end(): following.start() if following else len(text)].strip()
        points = _POINTS.search(body)
        if points is None:
            raise ValueError(f"{KEY_FOLDER}/{task}.md, {match.group(1)}: the section must state **Rubric (N points)**")
        out[match.group(1)] = {"points": float(points.group(1)), "text": body}
    return out


def collect(checkout: Path) -> dict[str, list[dict]]:
    """{task: questions(...)} of a checkout; an answer left empty in the task notebook is read from
    the executed copy in ``runs/<task>/`` (a student who wrote there)."""
    out = {}
    for task in TASKS:
        notebook = checkout / task / f"{task}.ipynb"
        if not notebook.is_file():
            continue
        rows = questions(notebook)
        executed = checkout / "runs" / task / f"{task}.ipynb"
        if executed.is_file():
            there = {q["id"]: q["answer"] for q in questions(executed)}
            for row in rows:
                row["answer"] = row["answer"] or there.get(row["id"], "")
        out[task] = rows
    return out


def report(checkout: Path, with_key: bool = False, root: Path = REPO_ROOT) -> str:
    """The markdown a grader reads: per question its text, the answer (or "(no answer)"), the key."""
    lines = [f"# Written answers: {checkout}", ""]
    for task, rows in collect(checkout).items():
        answered = sum(bool(r["answer"]) for r in rows)
        lines += [f"## {task}: {answered} of {len(rows)} answered, {sum(r['points'] for r in rows):g} points", ""]
        keys = key(root, task) if with_key else {}
        for row in rows:
            lines += [f"### {row['id']} ({row['points']:g} points)", "", row["question"], "", "**Answer:**", "",
                      row["answer"] or "(no answer)", ""]
            if with_key:
                lines += ["**Rubric and key:**", "", keys.get(row["id"], {}).get("text", "(not in the key)"), ""]
            lines += ["**Score:** ___ / " + f"{row['points']:g}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path, help="a student's checkout or unpacked submission.zip")
    parser.add_argument("--key", action="store_true", help="add the instructors' rubric and answer key")
    parser.add_argument("--out", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    if args.key and not (REPO_ROOT / KEY_FOLDER).is_dir():
        parser.error(f"--key needs the instructors' repository ({KEY_FOLDER}/ is not here)")
    text = report(args.checkout.resolve(), args.key)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
