"""The prepared GPU check: every stage of the three full-profile notebooks, a few steps each, on this
machine's GPU at the full profile's sizes - seconds per step, peak memory, the precision chosen, and
the extrapolated full-notebook time here and on a T4.

    python bench/gpu_check.py                      # on a CUDA machine: ~15 stages, a few minutes
    python bench/gpu_check.py --layers 2 --sizes tiny --device cpu   # the CPU test of this script

For a GPU machine without network (no hub, no pip): it builds the fake assets itself (``pa5.fake_assets``,
SmolLM2's real config at full depth, 30 layers, random weights), so only torch, transformers and peft
are needed; trl / datasets / overcomplete are not (pure-python wheels for the SAE stages can travel
in a folder and be installed with ``pip install --no-index --no-deps``; a stage whose import fails is
reported as skipped). Each stage runs in its own process (``bench/stages.py``), so each peak is its own.
Finally it runs the reward-model step once more with ``PA5_PRECISION=fp16``: the T4's fp16 + GradScaler path.

Extrapolation: full-notebook time here = sum over stages of (seconds per step x the number of such steps
the notebook runs). On a T4 by a stated ratio of throughputs per stage kind: dense (matmul-bound)
stages run T4_RATIO["dense"] times slower than on the GPU measured, decode (launch-bound) ones
T4_RATIO["decode"] times. The ratios are assumptions for an H100 / H200-class GPU (bf16 dense peak
~790 vs 65 TFLOP/s fp16 on a T4; token steps bound by kernel launches and the host, ~2x).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T4_RATIO = {"dense": 10.0, "decode": 2.0}
NOTEBOOKS = ("task1", "task2", "task3")


def run(stage: str, environment: dict, sizes: str, steps: int, timeout: int, memory_only: bool = False) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        started = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, str(ROOT / "bench" / "stages.py"), stage, "--steps", str(steps),
                                     "--sizes", sizes, "--out", out.name] + ["--memory-only"] * memory_only,
                                    env=environment, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"stage": stage, "error": f"timed out after {timeout} s", "wall": time.perf_counter() - started}
        if result.returncode != 0:
            return {"stage": stage, "error": (result.stderr.strip().splitlines() or ["?"])[-1],
                    "wall": time.perf_counter() - started}
        return {**json.loads(Path(out.name).read_text()), "wall": time.perf_counter() - started}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=30, help="SmolLM2 depth of the fake model (the real one: 30)")
    parser.add_argument("--sizes", choices=("full", "tiny"), default="full")
    parser.add_argument("--device", default="cuda", help="PA5_DEVICE for the stages (cuda, or cpu to test this script)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "pa5-gpu-check")
    parser.add_argument("--stages", nargs="*", help="only these (default: all)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per stage")
    parser.add_argument("--memory-only", action="store_true", help="see bench/stages.py (for a CPU memory run)")
    parser.add_argument("--out", type=Path, help="write all records as JSON here")
    args = parser.parse_args(argv)

    from bench.stages import stages
    from pa5 import fake_assets

    started = time.perf_counter()
    variables = fake_assets.build(args.root, layers=args.layers)
    environment = {**os.environ, **variables, "PA5_PROFILE": "full", "PA5_DEVICE": args.device,
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    print(f"fake assets ({args.layers} layers) ready in {time.perf_counter() - started:.0f} s", flush=True)
    chosen = [s for s in stages() if not args.stages or s.name in args.stages]
    records = []
    print(f"{'stage':<36} {'s/step':>8} {'peak GiB':>9} {'precision':>9} {'full notebook here':>19} {'on a T4':>9}")
    for stage in chosen:
        record = run(stage.name, environment, args.sizes, args.steps, args.timeout, args.memory_only) | {
            "what": stage.what, "kind": stage.kind, "full_steps": stage.full_steps}
        if "error" in record:
            print(f"{stage.name:<36} skipped: {record['error']}", flush=True)
        else:
            record["full_seconds"] = record["seconds_per_step"] * stage.full_steps
            record["t4_seconds"] = record["full_seconds"] * T4_RATIO[stage.kind]
            print(f"{stage.name:<36} {record['seconds_per_step']:8.3f} {record['peak_memory_gib']:9.2f} "
                  f"{record['precision']:>9} {record['full_seconds'] / 60:15.1f} min {record['t4_seconds'] / 60:5.1f} min",
                  flush=True)
        records.append(record)
    for task in NOTEBOOKS:
        done = [r for r in records if r["stage"].startswith(task) and "full_seconds" in r]
        if done:
            print(f"{task}: full notebook ~{sum(r['full_seconds'] for r in done) / 60:.1f} min here, "
                  f"~{sum(r['t4_seconds'] for r in done) / 60:.1f} min on a T4 (stages measured: {len(done)})")
    if args.device.startswith("cuda"):
        forced = run("task2/reward_model_step", {**environment, "PA5_PRECISION": "fp16"}, args.sizes, args.steps, 300)
        print(f"forced fp16 + GradScaler, reward-model step: {forced.get('seconds_per_step', float('nan')):.3f} s/step, "
              f"{forced.get('peak_memory_gib', float('nan')):.2f} GiB, precision {forced.get('precision', forced.get('error'))}")
        records.append({**forced, "forced": "fp16"})
    print(f"gpu_check finished in {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(records, indent=1))
    return records


if __name__ == "__main__":
    main()
