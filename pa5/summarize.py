"""Key numbers of several seeds' runs as mean ± sd: what the READMEs' results tables are made from.

    python -m pa5.execute --profile tiny --seeds 0 1 2    # writes runs/seed<N>/<task>/metrics.json
    python -m pa5.summarize runs/seed0 runs/seed1 runs/seed2 [--tasks task2]

Each row is one number of ``metrics.json`` (a path into it), its mean ± sample standard deviation
over the runs given, and every run's value, so a reader sees whether a finding holds on every seed.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pa5.profile import TASKS

# task 1's study settings (task1.study.study_settings of the default StudyConfig): name, temperature
_TASK1_SETTINGS = ([(s, None) for s in ("greedy", "greedy, repetition penalty 1.3", "greedy, no repeat 4-gram", "beam 3",
                                        "beam 3, no repeat 4-gram")]
                   + [(s, t) for s in ("top-k 50", "top-p 0.9") for t in (0.2, 0.5, 0.8, 1.0, 1.2)]
                   + [("min-p 0.1", 1.0), ("typical 0.9", 1.0)])
KEY_METRICS = {
    "task1": [f"summary[{s}, T={t}]/{k}" for s, t in _TASK1_SETTINGS
              for k in ("quality", "quality_se", "distinct_2", "self_bleu", "rep_2", "longest_repeat", "length")]
             + [f"by_family[{s}, T={t}, story]/quality" for s, t in _TASK1_SETTINGS],
    # a reward model is identified only up to a constant, and each seed trains its own: its scores are
    # compared with the base policy's within a run
    "task2": ["reward_model/test_accuracy", "reward_model/length_correlation", "dpo/test_reward_accuracy"]
             + [f"models/{m}/{k}" for m in ("base", "dpo", "ppo", "grpo") for k in ("gold_success", "words", "kl")]
             + [f"models/{m}/rm_reward - models/base/rm_reward" for m in ("dpo", "ppo", "grpo")]
             + [f"models/{m}/length_reward_corr" for m in ("base", "dpo", "ppo", "grpo")]
             + [f"family_verdicts/{m}/{f}/change" for m in ("dpo", "ppo", "grpo")
                for f in ("capital", "listing", "safety", "word_count")]
             + [f"frontier_shapes/{c}/{k}" for c in ("best-of-n", "PPO", "GRPO")
                for k in ("base_gold", "best_gold", "gain_over_base", "gain_noise", "best_kl", "final_gold",
                          "fall_from_best", "fall_noise")]
             + ["frontier/DPO/gold", "frontier/DPO/kl", "calibration/ece", "calibration/mean_confidence",
                "rm_dpo_agreement/same_order", "rm_dpo_agreement/margin_correlation"]
             + [f"verbosity_probe/{filler}/{k}" for filler in ("Many people visit it every year.", "I hope this helps.")
                for k in ("rm_delta", "share_rm_up", "gold_changed")],
    "task3": ["accuracy/resnet50", "accuracy/mobilenet_v3_large", "control_accuracy/resnet50"]
             + [f"pretraining/{m}/shape" for m in ("resnet50", "mobilenet_v3_large")]
             + [f"comparison/{family}/{column}"
                for family in ("USAE (paper)", "USAE (course)", "independent, matched", "independent, unaligned",
                               "USAE on untrained nets")
                for column in ("R2 resnet50->resnet50", "R2 resnet50->mobilenet_v3_large",
                               "R2 mobilenet_v3_large->resnet50", "R2 mobilenet_v3_large->mobilenet_v3_large",
                               "universal", "dead")]
             + [f"purity/universal, {m}/{f}{suffix}" for m in ("resnet50", "mobilenet_v3_large")
                for f in ("shape", "colour", "texture") for suffix in ("", " chance")]
             + [f"detectors/{f}" for f in ("shape", "colour", "texture", "-")]
             + ["universality/n_universal", "dead_fraction/usae", "matching/resnet50/usae_vs_independent",
                "matching/mobilenet_v3_large/usae_vs_independent"],
}


def lookup(metrics: dict, path: str):
    """The value at ``path`` ("a/b/c"; task 1's "summary[setting, T=t]/key" picks a row of its table,
    "by_family[setting, T=t, family]/key" a row of its per-family table; "a/b - c/d" is a difference
    of two values)."""
    if " - " in path:
        first, second = path.split(" - ")
        return lookup(metrics, first) - lookup(metrics, second)
    value = metrics
    for key in path.split("/"):
        if key.startswith(("summary[", "by_family[")):
            table, _, selector = key[:-1].partition("[")
            setting, rest = selector.split(", T=")
            temperature, _, family = rest.partition(", ")
            temperature = None if temperature == "None" else float(temperature)
            if table == "summary":
                value = next(row for row in value["summary"]
                             if row["setting"] == setting and row["temperature"] == temperature)
            else:  # the per-family table has no temperature column: the summary's row gives its label
                label = next(row["label"] for row in value["summary"]
                             if row["setting"] == setting and row["temperature"] == temperature)
                value = next(row for row in value["by_family"] if row["label"] == label and row["family"] == family)
        else:
            value = value[key]
    return value


def summary_rows(runs: list[Path], task: str) -> list[tuple[str, float, float, list[float]]]:
    """(path, mean, sd, per-run values) for each key metric of ``task`` present in every run (a
    metric recorded as null counts as NaN)."""
    records = [json.loads((run / task / "metrics.json").read_text())["metrics"] for run in runs]
    rows = []
    for path in KEY_METRICS[task]:
        try:
            values = [math.nan if (v := lookup(r, path)) is None else float(v) for r in records]
        except (KeyError, StopIteration):  # e.g. the stand-in's factors have no counterpart in full
            continue
        mean = sum(values) / len(values)  # NaN in, NaN out (statistics.stdev fails on NaN)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        rows.append((path, mean, sd, values))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pa5.summarize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="folders holding <task>/metrics.json, one per seed")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    args = parser.parse_args(argv)
    for task in args.tasks:
        present = [run for run in args.runs if (run / task / "metrics.json").exists()]
        if not present:
            continue
        print(f"\n{task} ({len(present)} runs: {', '.join(str(r) for r in present)})\n")
        print("| metric | mean ± sd | runs |\n|---|---|---|")
        for path, mean, sd, values in summary_rows(present, task):
            print(f"| {path} | {mean:.3f} ± {sd:.3f} | {' / '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
