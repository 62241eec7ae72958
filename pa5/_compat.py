"""Compatibility shims, applied once when ``pa5`` is imported.

overcomplete 0.3.0 calls ``matplotlib.cm.get_cmap`` at import time
(overcomplete/visualization/cmaps.py); matplotlib 3.9 removed it, so ``import overcomplete``
fails with AttributeError. We restore the function with its old semantics, delegating to the
colormap registry, instead of pinning an old matplotlib for everything else.
"""
from __future__ import annotations


def _get_cmap(name=None, lut=None):
    """``matplotlib.cm.get_cmap`` as it was before 3.9: name/Colormap/None, optional resampling."""
    import matplotlib

    cmap = matplotlib.colormaps.get_cmap(name if name is not None else matplotlib.rcParams["image.cmap"])
    return cmap if lut is None else cmap.resampled(lut)


def patch_matplotlib_for_overcomplete() -> bool:
    """Add ``matplotlib.cm.get_cmap`` where it is missing. Returns True when it patched."""
    try:
        import matplotlib.cm as cm
    except ImportError:  # no matplotlib: nothing to fix
        return False
    if hasattr(cm, "get_cmap"):
        return False
    cm.get_cmap = _get_cmap
    return True
