"""pa5.device: the device choice, the precision policy (bf16 / fp16 + GradScaler / fp32), placement and the audit."""
import pytest
import torch

from pa5 import device as D
from pa5.optim import optimizer_step


def test_device_choice_and_bad_devices(monkeypatch):
    monkeypatch.delenv(D.DEVICE_ENV, raising=False)
    assert D.resolve_device("tiny") == torch.device("cpu")
    assert D.resolve_device("full", "cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.resolve_device("full") == torch.device("cpu"), "auto without CUDA is the CPU (the rehearsal runs so)"
    for bad, hint in (("cuda", "no CUDA device"), ("cuda:3", "no CUDA device"), ("tpu", "allowed"), ("gpu!", "allowed")):
        with pytest.raises(ValueError, match="PA5_DEVICE") as error:
            D.resolve_device("full", bad)
        assert hint in str(error.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="0..0"):
        D.resolve_device("full", "cuda:1")


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_precision_policy_follows_the_compute_capability(monkeypatch, capability, expected):
    """A T4 (7.5) has no bf16 hardware: fp16 autocast with a GradScaler; Ampere and later: bf16, no scaler."""
    monkeypatch.delenv(D.PRECISION_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert D.precision("cuda") == expected
    scaler = D.grad_scaler("cuda")
    assert isinstance(scaler, torch.amp.GradScaler) == (expected == "fp16"), "a GradScaler exactly for fp16"
    assert D.precision("cpu") == "fp32" and D.grad_scaler("cpu") is None
    assert isinstance(D.autocast("cpu"), type(D.autocast("cpu"))) and D.precision("cpu", "bf16") == "bf16"


def test_unknown_precision_is_rejected(monkeypatch):
    monkeypatch.setenv(D.PRECISION_ENV, "fp8")
    with pytest.raises(ValueError, match="PA5_PRECISION='fp8'.*auto, bf16, fp16, fp32"):
        D.precision("cpu")


def test_optimizer_step_through_a_grad_scaler_is_the_plain_step():
    """Scaling the loss by 2^k and unscaling the gradients is exact: the same update, the same norm."""
    steps = []
    for scaler in (None, torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
        loss = model(torch.randn(8, 4)).pow(2).mean()
        norm = optimizer_step(loss, model.parameters(), optimizer, max_norm=0.5, scaler=scaler)
        steps.append((norm, torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert steps[0][0] == pytest.approx(steps[1][0], rel=1e-6), "the norm is of the unscaled gradients"
    torch.testing.assert_close(steps[0][1], steps[1][1])


def test_an_overflowing_fp16_step_is_skipped():
    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    loss = model(torch.full((1, 2), float("inf"))).sum()
    norm = optimizer_step(loss, model.parameters(), torch.optim.SGD(model.parameters(), lr=1.0), scaler=scaler)
    assert norm != norm or norm == float("inf"), "an overflow shows in the logged norm"
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the step is skipped"
    assert scaler.get_scale() < 2.0 ** 16, "and the scale shrinks"


def test_audit_catches_an_unplaced_model_a_wrong_device_and_a_half_precision_parameter():
    placed = D.place(torch.nn.Linear(3, 5), "cpu")
    unplaced = torch.nn.Linear(3, 7)  # 28 parameters: built without a loader's place()
    assert D.audit("cpu", [placed])["ok"]
    result = D.audit("cpu", [placed, unplaced])
    assert not result["ok"] and result["unplaced"] == ["Linear (28 parameters)"], result
    assert any("28 parameters" in line for line in D.audit("cpu")["unplaced"]), \
        "without a list, the audit finds every live model itself"
    elsewhere = D.place(torch.nn.Linear(2, 2), "meta")
    assert D.audit("cpu", [elsewhere])["wrong_device"], "a model on another device fails the audit"
    half = D.place(torch.nn.Linear(2, 2).to(torch.bfloat16), "cpu")
    assert D.audit("cpu", [half])["not_float32"], "a trainable bf16 parameter fails the audit"
    half.requires_grad_(False)
    assert D.audit("cpu", [half])["ok"], "frozen weights may be any dtype"
    with pytest.raises(RuntimeError, match="unplaced.*28 parameters"):
        D.check_audit("cpu")
    del unplaced


@pytest.fixture(scope="module")
def bf16_checkpoint(tmp_path_factory, smollm2_standin):
    """A tiny Llama saved in bfloat16 - as SmolLM2 is on the hub (its config says torch_dtype bfloat16)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from pa5 import hub

    folder = tmp_path_factory.mktemp("bf16")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=2048, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=2))
    model.to(torch.bfloat16).save_pretrained(folder)
    hub.from_pretrained(AutoTokenizer, "standin:smollm2").save_pretrained(folder)
    return folder


def test_every_trainable_parameter_is_float32_from_a_bf16_checkpoint(bf16_checkpoint, monkeypatch):
    """Weights load in float32 whatever they were saved in: LoRA, the reward head and the critic train in
    float32 (a bf16 head moves ~half as far per AdamW step and its rewards tie)."""
    from pa5 import hub
    from task2.policy import load_policy
    from task2.ppo import load_value_model
    from task2.reward_model import load_reward_model

    monkeypatch.setattr(hub, "_standin", lambda ref: bf16_checkpoint)
    models = {"policy": load_policy("standin:bf16"), "reward model": load_reward_model("standin:bf16", 2)}
    models["critic"] = load_value_model(models["reward model"])
    for name, model in models.items():
        trainable = {p.dtype for p in model.parameters() if p.requires_grad}
        assert trainable == {torch.float32}, f"{name}: trainable parameters in {trainable}"
        assert {p.dtype for p in model.parameters()} == {torch.float32}, f"{name}: weights not loaded in float32"
    assert D.audit("cpu", list(models.values()))["ok"], "every loader places what it builds"


def test_out_of_memory_names_the_stage_its_need_and_the_setting(monkeypatch):
    class Properties:
        total_memory = 16 * 2**30

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Properties())
    with pytest.raises(MemoryError, match=r"DPO ran out of GPU memory \(this GPU: 16.0 GiB; the stage needs about 3.7 GiB.*"
                                          r"Lower config.dpo.batch_size"):
        with D.memory_stage("DPO", "config.dpo.batch_size", 3.7):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with D.memory_stage("DPO", "config.dpo.batch_size"):
        pass  # nothing raised, nothing changed
