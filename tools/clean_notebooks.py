"""Strip outputs and execution counts from notebooks before committing them.

    python tools/clean_notebooks.py            # every task notebook
    python tools/clean_notebooks.py --check    # exit 1 and list the notebooks that carry outputs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]


def task_notebooks() -> list[Path]:
    return sorted(REPO_ROOT.glob("task*/task*.ipynb"))


def has_outputs(nb) -> bool:
    return any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells)


def clean(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report, change nothing")
    args = parser.parse_args(argv)
    dirty = []
    for path in task_notebooks():
        nb = nbformat.read(path, as_version=4)
        if has_outputs(nb):
            dirty.append(path)
            if not args.check:
                clean(nb)
                nbformat.write(nb, path)
    for path in dirty:
        print(f"{'has outputs' if args.check else 'cleaned'}: {path.relative_to(REPO_ROOT)}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
