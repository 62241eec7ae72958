"""The grading worker (pa5.worker): what a student function can send back, timeouts, crashes,
isolation from the instructors' files and the generate guard - each against a fake student checkout."""
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pa5.worker import Student, StudentError, StudentTimeout, site_packages_view

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import release  # noqa: E402

FORGER = '''
import os, sys, time, torch

class Anything:
    """Compares equal to anything, also as a tensor."""
    def __eq__(self, other): return True
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None): return True

class Tensorish(torch.Tensor):
    def __eq__(self, other): return torch.ones((), dtype=torch.bool)

def anything(*args): return Anything()
def tensor_subclass(*args): return torch.zeros(3).as_subclass(Tensorish)
def int_subclass(*args):
    class Int(int):
        def __eq__(self, other): return True
    return Int(3)
def model(*args): return torch.nn.Linear(2, 2)
def forever(*args):
    while True: time.sleep(0.05)
def exits(*args): sys.exit(0)
def dies(*args): os._exit(0)
def raises(*args): raise ValueError("k must be >= 1, got 0")
def honest(x): return {"sum": x.sum(), "shape": list(x.shape), "twice": (x * 2).requires_grad_()}
def solutions(*args):
    import importlib.metadata
    return str(importlib.metadata.distribution("pa5").locate_file(""))
def where(*args): return [sys.prefix, sys.executable, *sys.path]
'''

DELEGATOR = '''
def greedy(model, ids):
    return model.generate(ids, max_new_tokens=2, do_sample=False)
def warp(logits):
    from transformers.generation.logits_process import TopKLogitsWarper
    return TopKLogitsWarper(2)(None, logits)
'''


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """The given modules (pa5) and two student files: task9/forger.py and task1/delegating.py."""
    root = tmp_path_factory.mktemp("student")
    shutil.copytree(REPO / "pa5", root / "pa5", ignore=shutil.ignore_patterns("__pycache__"))
    for package, name, source in (("task9", "forger", FORGER), ("task1", "delegating", DELEGATOR)):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
        (root / package / f"{name}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture(scope="module")
def worker(checkout, tmp_path_factory):
    site = site_packages_view(tmp_path_factory.mktemp("view") / "site-packages")
    student = Student(checkout, isolated=True, forbidden=(REPO,), site_packages=site, call_timeout=20)
    yield student
    student.close()


@pytest.mark.parametrize("function", ["anything", "tensor_subclass", "int_subclass", "model"])
def test_only_plain_data_comes_back(worker, function):
    with pytest.raises(StudentError, match="cross to the grader|not plain data"):
        worker.call(f"task9.forger:{function}", torch.zeros(3))


def test_honest_results_arrive_as_plain_tensors_and_containers(worker):
    got = worker.call("task9.forger:honest", torch.arange(6.0).view(2, 3))
    assert type(got) is dict and type(got["sum"]) is torch.Tensor and got["sum"].item() == 15.0
    assert got["shape"] == [2, 3] and not got["twice"].requires_grad, "results are detached"


def test_a_call_that_never_returns_fails_alone_and_the_next_call_gets_a_new_worker(worker):
    with pytest.raises(StudentTimeout, match="no answer within 2 s"):
        worker.call("task9.forger:forever", _timeout=2)
    assert worker.call("task9.forger:honest", torch.ones(2))["sum"].item() == 2.0


@pytest.mark.parametrize("function", ["exits", "dies"])
def test_exiting_is_a_failed_call_not_a_grader_error(worker, function):
    with pytest.raises(StudentError):
        worker.call(f"task9.forger:{function}")
    assert worker.call("task9.forger:honest", torch.ones(2))["sum"].item() == 2.0


def test_a_student_value_error_is_a_value_error_with_its_message(worker):
    with pytest.raises(ValueError, match="k must be >= 1"):
        worker.call("task9.forger:raises")


def test_the_isolated_worker_cannot_find_the_instructors_files(worker, checkout):
    with pytest.raises(StudentError, match="PackageNotFoundError|No package metadata"):
        worker.call("task9.forger:solutions")
    for path in worker.call("task9.forger:where"):
        assert not Path(path).resolve().is_relative_to(REPO), f"{path} is inside the instructors' repository"


def test_the_grader_refuses_a_worker_that_could_import_the_solutions(checkout):
    """Not isolated from this environment (its editable install of the repository): refused."""
    student = Student(checkout, isolated=True, forbidden=(REPO,),
                      site_packages=next(Path(p) for p in __import__("site").getsitepackages()))
    with pytest.raises(RuntimeError, match="refusing to grade"):
        student.call("task9.forger:honest", torch.ones(1))
    student.close()


def test_generate_and_hf_warpers_are_unavailable_to_task1_code(worker):
    model = worker.build("pa5.recipes:tiny_llama")
    with pytest.raises(StudentError, match="not available while task 1"):
        worker.call("task1.delegating:greedy", model, torch.tensor([[1, 2, 3]]))
    with pytest.raises(StudentError, match="not available while task 1"):
        worker.call("task1.delegating:warp", torch.zeros(1, 5))
    assert worker.call("pa5.recipes:tiny_llama_generate", model, torch.tensor([[1, 2, 3]])).shape == (1, 5), \
        "given code outside task 1 keeps generate"


def test_objects_built_for_one_test_are_rebuilt_for_the_next(worker):
    """A student function that changes a model (here: freezes it) changes it for the rest of that
    test only: forget() drops the worker's objects, and handles kept before it are void."""
    model = worker.build("pa5.recipes:tiny_llama")
    frozen = model.requires_grad_(False, _keep=True)
    assert worker.call("pa5.recipes:trainable_state", model) == {}, "within a test, one recipe is one object"
    worker.forget()
    assert len(worker.call("pa5.recipes:trainable_state", model)) > 0, "the next test gets a fresh build"
    with pytest.raises(StudentError, match="forgot its objects"):
        worker.call("pa5.recipes:trainable_state", frozen)


BASE = '''
def helper(x):
    return x + 1


def double(x):
    """Graded."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION
'''
USER = '''
from task9.base import helper


def triple(x):
    """Graded; uses the given helper of another graded file."""
    ### BEGIN SOLUTION
    return 3 * helper(x) - 3
    ### END SOLUTION
'''


@pytest.mark.parametrize("broken, error", [("def double(x:\n", "SyntaxError"),
                                           ("import no_such_module\n", "ModuleNotFoundError"),
                                           ("raise SystemExit(0)\n", "SystemExit"), (None, "missing")])
def test_a_file_that_does_not_import_fails_only_its_own_functions(tmp_path, broken, error):
    """Isolation between files: task9/user.py imports task9/base.py, whose student version does not
    import. The worker falls back to base's handed-out version: user's functions and base's given
    helper work, base's graded function raises ImportError naming the file and its error."""
    root = tmp_path / "student"
    shutil.copytree(REPO / "pa5", root / "pa5", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "task9").mkdir()
    (root / "task9" / "__init__.py").write_text("")
    (root / "task9" / "user.py").write_text(USER)
    if broken is not None:
        (root / "task9" / "base.py").write_text(BASE + broken)
    fallbacks = {f"task9.{name}": release.stub_solutions(source, f"task9/{name}.py", release.FALLBACK)
                 for name, source in (("base", BASE), ("user", USER))}
    student = Student(root, fallbacks=fallbacks, call_timeout=60)
    try:
        assert student.call("task9.user:triple", 2) == 6, "user.py imports a broken base.py's given helper"
        assert student.call("task9.base:helper", 1) == 2
        with pytest.raises(ImportError, match=f"task9/base.py does not import, so double is unavailable - .*{error}"):
            student.call("task9.base:double", 1)
    finally:
        student.close()
    plain = Student(root, call_timeout=60)  # without fallbacks (a student's own checkout) the error shows as is
    try:
        with pytest.raises(StudentError):
            plain.call("task9.user:triple", 2)
    finally:
        plain.close()
