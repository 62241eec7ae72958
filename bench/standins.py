"""Time loading the cached stand-ins through pa5.hub, the path the notebooks use; or, with ``--seeds``,
what each stand-in seed's build took and learned.

    python bench/standins.py                 # builds first if the cache is cold (then times a warm load)
    python bench/standins.py --seeds 0 1 2   # per PA5_STANDIN_SEED (built if missing): build seconds and
                                             # the build reports' quality numbers, which the stand-in tests'
                                             # tolerances are set against

Build times are also printed by ``python -m pa5.standins build`` and at the end of every pytest run that
built a stand-in (stored in each manifest's report).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_LOAD = """
import time
t0 = time.perf_counter()
from transformers import AutoModelForCausalLM, AutoTokenizer
from pa5 import hub
t1 = time.perf_counter()
hub.from_pretrained(AutoTokenizer, "standin:smollm2"); hub.from_pretrained(AutoModelForCausalLM, "standin:smollm2")
t2 = time.perf_counter()
hub.load_hf_dataset("standin:mini_orca")
t3 = time.perf_counter()
hub.cifar100(train=True, ref="standin:cifar100"); hub.cifar100(train=False, ref="standin:cifar100")
t4 = time.perf_counter()
for network in ("resnet50", "mobilenet_v3_large"):
    hub.imagenet_state_dict(f"standin:imagenet/{network}")
t5 = time.perf_counter()
print(f"| imports (torch, transformers, pa5) | {t1 - t0:.2f} |")
print(f"| standin:smollm2 (tokenizer + model, sha256-verified) | {t2 - t1:.2f} |")
print(f"| standin:mini_orca (datasets.load_dataset) | {t3 - t2:.2f} |")
print(f"| standin:cifar100 (train + test, torchvision) | {t4 - t3:.2f} |")
print(f"| standin:imagenet (both networks' state dicts, sha256-verified) | {t5 - t4:.2f} |")
"""


def seeds_table(seeds: list[int]) -> None:
    """One row per stand-in seed: the language model's and the backbones' build reports."""
    from pa5 import standins

    print("| seed | LM build (s) | LM held-out loss (random init) | LM greedy gold success | ends with <\\|im_end\\|> "
          "| ResNet50 build (s) | ResNet50 held-out shape / colour / texture | MobileNetV3 build (s) "
          "| MobileNetV3 held-out shape / colour / texture |")
    print("|---" * 9 + "|")
    for seed in seeds:
        os.environ["PA5_STANDIN_SEED"] = str(seed)
        lm, nets = (standins.report(standins.get(name)) for name in ("smollm2", "imagenet"))
        cells = [f"{lm['build_seconds']:.0f}", f"{lm['held_out_loss']:.2f} ({lm['held_out_loss_random_init']:.2f})",
                 f"{lm['gold_success']:.3f}", f"{lm['ended_with_im_end']:.2f}"]
        for name in ("resnet50", "mobilenet_v3_large"):
            accuracy = nets[name]["held_out_accuracy"]
            cells += [f"{nets[name]['seconds']:.0f}", " / ".join(f"{accuracy[k]:.3f}" for k in ("shape", "colour", "texture"))]
        print(f"| {seed} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", help="report these stand-in seeds' builds instead of timing loads")
    args = parser.parse_args()
    if args.seeds:
        seeds_table(args.seeds)
        return
    subprocess.run([sys.executable, "-m", "pa5.standins", "build"], check=True, capture_output=True)
    started = time.perf_counter()
    print("| warm load, fresh interpreter | seconds |\n|---|---|")
    subprocess.run([sys.executable, "-c", _LOAD], check=True)
    print(f"| whole process | {time.perf_counter() - started:.2f} |")


if __name__ == "__main__":
    main()
