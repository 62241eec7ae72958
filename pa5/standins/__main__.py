"""``python -m pa5.standins build [NAME ...]``: build (or verify the cache of) the tiny profile's stand-ins."""
from __future__ import annotations

import argparse
import json
import time

from tqdm.auto import tqdm

from pa5 import standins


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pa5.standins", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the stand-ins that are not cached yet")
    build.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(standins.STANDINS)} (default: all)")
    args = parser.parse_args(argv)
    names = args.names or list(standins.STANDINS)
    for name in names:
        if name not in standins.STANDINS:
            parser.error(f"unknown stand-in {name!r}; allowed: {', '.join(standins.STANDINS)}")
    for name in tqdm(names, desc="stand-ins", unit="stand-in"):
        started = time.perf_counter()
        folder = standins.get(name)
        tqdm.write(f"{name}: {folder} ({time.perf_counter() - started:.1f} s)")
        tqdm.write(json.dumps(standins.report(folder), indent=2))


if __name__ == "__main__":
    main()
