"""PA5 shared code: profiles, runtime, hub access and (in pa5.standins) the offline stand-ins.

Importing pa5 applies the compatibility shims once (see pa5._compat), so ``import overcomplete``
works afterwards whatever matplotlib is installed.
"""
import os as _os

# Fail fast on an unreachable hub: huggingface_hub reads these once, when it is first imported.
_os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
_os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")

from pa5._compat import patch_matplotlib_for_overcomplete  # noqa: E402

patch_matplotlib_for_overcomplete()

from pa5.notebook import Session, save_metrics, setup  # noqa: E402
from pa5.profile import resolve_profile, task_profile  # noqa: E402

__all__ = ["Session", "resolve_profile", "save_metrics", "setup", "task_profile"]
