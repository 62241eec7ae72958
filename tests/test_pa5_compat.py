"""overcomplete 0.3.0 + matplotlib >= 3.9: ``import overcomplete`` works once pa5 is imported."""
import subprocess
import sys



def test_overcomplete_imports_after_pa5():
    code = ("import pa5, overcomplete, torch\n"
            "from overcomplete.sae import TopKSAE\n"
            "sae = TopKSAE(8, nb_concepts=16, top_k=2)\n"
            "pre, codes, x_hat = sae(torch.randn(4, 8))\n"
            "assert x_hat.shape == (4, 8) and int((codes > 0).sum(1).max()) <= 2\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"a fresh interpreter could not use overcomplete:\n{result.stderr[-2000:]}"


def test_restored_get_cmap_keeps_the_old_semantics():
    import matplotlib
    import matplotlib.pyplot as plt

    from pa5._compat import _get_cmap

    assert _get_cmap("viridis").name == "viridis"
    assert _get_cmap("viridis", lut=8).N == 8
    assert _get_cmap(None).name == matplotlib.rcParams["image.cmap"]
    assert _get_cmap(plt.get_cmap("magma")).name == "magma"
