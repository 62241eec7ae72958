"""pa5's shared pieces: argument checks, the optimizer step every loop uses, chat prompts and positions,
the asset table, and the structure rules (algorithm modules independent, notebooks thin)."""
import ast
import math

import nbformat
import pytest
import torch

from pa5 import assets, checks, llm
from pa5.optim import optimizer_step
from pa5.paths import REPO_ROOT
from pa5.profile import TASKS, task_profile


@pytest.mark.parametrize("call, message", [
    (lambda: checks.check_int("steps", -1, 0), "steps must be an int >= 0, got -1"),
    (lambda: checks.check_int("steps", True, 0), "steps must be an int >= 0, got True"),
    (lambda: checks.check_int("k", 5, 1, 4), r"k must be an int in \[1, 4\], got 5"),
    (lambda: checks.check_number("beta", 0.0, 0, low_open=True), "beta must be a finite number > 0, got 0.0"),
    (lambda: checks.check_number("p", 1.5, 0, 1, low_open=True), r"p must be a finite number in \(0, 1\], got 1.5"),
    (lambda: checks.check_number("lr", float("nan"), 0), "lr must be a finite number >= 0, got nan"),
    (lambda: checks.check_number("lr", "1e-3"), "lr must be a finite number, got '1e-3'"),
    (lambda: checks.check_choice("mode", "zscore", ("paper", "l2_center")), "mode must be one of"),
    (lambda: checks.check_same_shape(2, a=torch.zeros(2, 3), b=torch.zeros(2, 4)), "a, b must be 2-d tensors of one shape"),
    (lambda: checks.check_same_shape(2, a=torch.zeros(3), b=torch.zeros(3)), "2-d"),
])
def test_checks_name_the_argument_and_the_allowed_range(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_checks_pass_valid_values_through():
    assert checks.check_int("n", 3, 1, 3) == 3 and checks.check_number("p", 1, 0, 1, low_open=True) == 1
    checks.check_same_shape(2, a=torch.zeros(2, 3), b=torch.ones(2, 3))


def _two_layers():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)


def test_optimizer_step_returns_the_norm_before_clipping_and_clips():
    first, second = _two_layers()
    x = torch.randn(8, 3)
    loss = (second(first(x)) ** 2).mean() * 100
    parameters = [*first.parameters(), *second.parameters()]
    expected = torch.autograd.grad(loss, parameters, retain_graph=True)
    norm = torch.cat([g.flatten() for g in expected]).norm().item()
    before = [p.detach().clone() for p in parameters]
    optimizer = torch.optim.SGD(parameters, lr=1.0)
    assert optimizer_step(loss, parameters, optimizer, max_norm=0.5) == pytest.approx(norm, rel=1e-5)
    moved = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, parameters)])
    assert moved.norm().item() == pytest.approx(0.5, rel=1e-4), "SGD at lr 1 moves by the clipped gradient: norm 0.5"
    assert all(p.grad is None for p in parameters), "gradients are cleared after the step"


def test_optimizer_step_updates_only_the_given_parameters():
    first, second = _two_layers()
    loss = second(first(torch.randn(4, 3))).sum()
    frozen = [p.detach().clone() for p in first.parameters()]
    optimizer_step(loss, second.parameters(), torch.optim.SGD([*first.parameters(), *second.parameters()], lr=0.1),
                   max_norm=None)
    assert all(torch.equal(a, b) for a, b in zip(frozen, first.parameters())), "the loss reaches first, but it is not stepped"
    assert all(p.grad is None for p in first.parameters()), "and no gradient is left on it for a later step"
    with pytest.raises(ValueError, match="max_norm"):
        optimizer_step(second(torch.ones(1, 3)).sum(), second.parameters(), torch.optim.SGD(second.parameters(), 0.1), 0)


def test_left_pad_and_generate_positions():
    ids, mask = llm.left_pad([[5, 6, 7], [8]], pad_id=2)
    assert ids.tolist() == [[5, 6, 7], [2, 2, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert llm.position_ids(mask).tolist() == [[0, 1, 2], [0, 0, 0]], "real tokens count from 0; padding gets 0"
    right = torch.tensor([[1, 1, 0]])
    assert llm.position_ids(right)[0, :2].tolist() == [0, 1]


@pytest.mark.usefixtures("smollm2_standin")
def test_encoded_prompts_are_the_tokenizers_own_left_padding():
    from transformers import AutoTokenizer

    from pa5 import hub
    tokenizer = hub.from_pretrained(AutoTokenizer, "standin:smollm2")
    prompts = [{"system": "", "question": "Name three fruits."},
               {"system": "You are a helpful assistant.", "question": "What is the capital of France?"}]
    ids, mask = llm.encode_prompts(tokenizer, prompts)
    texts = [tokenizer.apply_chat_template(llm.chat_messages(p["system"], p["question"]), add_generation_prompt=True,
                                           tokenize=False) for p in prompts]
    tokenizer.padding_side = "left"
    expected = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert torch.equal(ids, expected["input_ids"]) and torch.equal(mask, expected["attention_mask"])
    entropy = llm.entropy(torch.tensor([[0.0, 0.0], [0.0, -math.inf]]))
    torch.testing.assert_close(entropy, torch.tensor([math.log(2), 0.0]))


@pytest.mark.parametrize("task", TASKS)
def test_full_profile_assets_are_in_the_one_table(task):
    refs = task_profile(task, "full").assets()
    assert refs and all(ref in assets.ASSETS for ref in refs)
    if task == "task3":
        assert set(assets.IMAGENET_WEIGHTS.values()) <= set(refs), "pretrained networks bring their weights"


ALGORITHMS = ("dpo", "ppo", "grpo")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_no_algorithm_module_imports_another(algorithm):
    tree = ast.parse((REPO_ROOT / "task2" / f"{algorithm}.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    others = {f"task2.{a}" for a in ALGORITHMS if a != algorithm}
    assert not imported & others, f"task2/{algorithm}.py imports {imported & others}: shared code goes to task2/policy.py"


@pytest.mark.parametrize("task", TASKS)
def test_notebook_code_defines_no_function_and_draws_nothing_itself(task):
    """Notebooks are thin: mechanism lives in the task's modules, figures in its plots module."""
    notebook = nbformat.read(REPO_ROOT / task / f"{task}.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)), \
                f"{task}.ipynb defines a function or class:\n{cell.source}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n.startswith("matplotlib") for n in names), f"{task}.ipynb draws itself:\n{cell.source}"


def test_summarize_gives_mean_sd_and_every_run(tmp_path, monkeypatch):
    import json

    from pa5 import summarize

    for seed, (gold, base_rm, dpo_rm) in enumerate(((0.4, -1.0, 0.5), (0.6, 1.0, 1.5))):
        folder = tmp_path / f"seed{seed}" / "task2"
        folder.mkdir(parents=True)
        models = {"base": {"gold_success": gold, "rm_reward": base_rm}, "dpo": {"gold_success": None, "rm_reward": dpo_rm}}
        (folder / "metrics.json").write_text(json.dumps({"metrics": {"models": models}}))
    monkeypatch.setitem(summarize.KEY_METRICS, "task2", ["models/base/gold_success", "models/dpo/gold_success",
                                                         "models/dpo/rm_reward - models/base/rm_reward", "absent/key"])
    rows = {path: (mean, sd, values) for path, mean, sd, values
            in summarize.summary_rows([tmp_path / "seed0", tmp_path / "seed1"], "task2")}
    assert rows["models/base/gold_success"][:2] == pytest.approx((0.5, 0.1414214)), "mean and sample sd"
    assert rows["models/dpo/rm_reward - models/base/rm_reward"][2] == [1.5, 0.5], "a difference within each run"
    assert all(math.isnan(v) for v in rows["models/dpo/gold_success"][2]), "a null is NaN, not a crash"
    assert "absent/key" not in rows, "a metric some runs lack is left out"
