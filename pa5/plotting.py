"""How every figure of the course ends: saved under the run's folder, shown in a notebook, closed."""
from __future__ import annotations

from pathlib import Path


def save_and_show(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` (PNG, 120 dpi), display it when running in a notebook kernel, then
    close it (so it is shown once, and a long run does not keep every figure in memory)."""
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and "IPKernelApp" in shell.config:
        from IPython.display import display

        display(fig)
    plt.close(fig)
