"""Time loading the cached stand-ins through pa5.hub, the path the notebooks use.

    python bench/standins.py            # builds first if the cache is cold (then times a warm load)

Build times are printed by ``python -m pa5.standins build`` (and stored in each manifest's report).
"""
from __future__ import annotations

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


def main() -> None:
    subprocess.run([sys.executable, "-m", "pa5.standins", "build"], check=True, capture_output=True)
    started = time.perf_counter()
    print("| warm load, fresh interpreter | seconds |\n|---|---|")
    subprocess.run([sys.executable, "-c", _LOAD], check=True)
    print(f"| whole process | {time.perf_counter() - started:.2f} |")


if __name__ == "__main__":
    main()
