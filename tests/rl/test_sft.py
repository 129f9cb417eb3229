"""Supervised warm-up on the tiny model: the loss goes down, and a resumed run continues exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import codefalcon.rl.sft as sft_module
from codefalcon.configs import load_config
from codefalcon.models import load_policy
from codefalcon.models.answers import IGNORE_INDEX, Example
from codefalcon.rl import masked_token_cross_entropy
from codefalcon.rl.checkpoint import latest_checkpoint
from codefalcon.rl.metrics_log import read_metrics
from codefalcon.rl.sft import SFTConfig, collate, example_loss, train_sft
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, test = generate_splits(48, 6, seed=5)
    path = tmp_path_factory.mktemp("sft-tasks") / "tasks.jsonl"
    save_tasks_jsonl(train + test, path)
    return path


def _config(model: Path, tasks: Path, out: Path, **overrides) -> SFTConfig:
    base = {
        "model": str(model),
        "train": [{"benchmark": "jsonl", "path": str(tasks), "split": "train"}],
        "eval": {"benchmark": "jsonl", "path": str(tasks), "split": "test"},
        "out_dir": str(out),
        "device": "cpu",  # also on a GPU machine: the resume comparison needs CPU determinism
        "max_steps": 6,
        "warmup_steps": 1,
        "micro_batch_size": 4,
        "grad_accum": 2,
        "lr": 3e-3,
        "save_every": 2,
        "eval_every": 3,
        "final_eval": False,
        "tensorboard": False,
    }
    return load_config(SFTConfig, None, [f"{k}={json.dumps(v)}" for k, v in {**base, **overrides}.items()])


def test_device_option(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    from codefalcon.configs import ConfigError

    assert SFTConfig.model_fields["device"].default == "auto"
    assert _config(tiny_dir, tasks_file, tmp_path, device="cuda").device == "cuda"  # checked at load
    assert SFTConfig.model_fields["device"].description.startswith('"auto" (CUDA when available')
    for bad in (1, ["cpu"], "cuda:"):
        with pytest.raises(ConfigError, match="device"):
            _config(tiny_dir, tasks_file, tmp_path, device=bad)


def test_masked_cross_entropy_hand_computed() -> None:
    # two positions, vocab 2; logits (0, 0) -> p = 0.5 each -> CE = ln 2; the second is ignored
    logits = torch.zeros(1, 2, 2)
    labels = torch.tensor([[1, IGNORE_INDEX]])
    loss, n = masked_token_cross_entropy(logits, labels)
    assert n == 1
    assert abs(float(loss) - 0.6931471805599453) < 1e-6


def test_collate_pads_right_and_masks_labels() -> None:
    a = Example("a", (5, 6, 7), (IGNORE_INDEX, 6, 7))
    b = Example("b", (5,), (5,))
    ids, mask, labels = collate([a, b], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [5, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert labels.tolist() == [[IGNORE_INDEX, 6, 7], [5, IGNORE_INDEX, IGNORE_INDEX]]


def test_padding_does_not_change_the_loss(tiny_dir: Path) -> None:
    model = load_policy(tiny_dir).model
    a = Example("a", (5, 6, 7, 8), (IGNORE_INDEX, IGNORE_INDEX, 7, 8))
    b = Example("b", (9, 10), (IGNORE_INDEX, 10))
    with torch.no_grad():
        alone, n_alone = example_loss(model, "causal", [a])
        both, n_both = example_loss(model, "causal", [a, b])
        b_alone, _ = example_loss(model, "causal", [b])
    assert (n_alone, n_both) == (2, 3)
    assert abs(float(both) - float(alone) - float(b_alone)) < 1e-4


def test_loss_on_answer_positions_only_equals_the_full_logits_loss(tiny_dir: Path) -> None:
    # example_loss runs the LM head from the batch's first answer token on; the prompt-only
    # positions before it must not change the value
    model = load_policy(tiny_dir).model
    a = Example("a", (5, 6, 7, 8, 9, 10), (IGNORE_INDEX,) * 4 + (9, 10))
    b = Example("b", (11, 12, 13, 14), (IGNORE_INDEX,) * 3 + (14,))
    with torch.no_grad():
        loss, n = example_loss(model, "causal", [a, b])
        ids, mask, labels = (t.to(model.device) for t in collate([a, b], pad_id=0))  # CUDA if present
        logits = model(input_ids=ids, attention_mask=mask).logits
        full, n_full = masked_token_cross_entropy(logits[:, :-1], labels[:, 1:], IGNORE_INDEX)
    assert n == n_full == 3
    assert abs(float(loss) - float(full)) < 1e-5


@pytest.mark.slow
def test_loss_goes_down(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    train_sft(_config(tiny_dir, tasks_file, tmp_path / "run", max_steps=12, save_every=12), progress=False)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 13))
    first = sum(r["loss/train"] for r in records[:3]) / 3
    last = sum(r["loss/train"] for r in records[-3:]) / 3
    assert last < first - 0.5, (first, last)
    assert "loss/eval" in records[2] and "loss/eval" in records[5]
    final = load_policy(tmp_path / "run" / "final")  # the final model reloads as a policy
    assert final.kind == "causal"


@pytest.mark.slow
def test_resume_gives_the_same_next_steps(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = tmp_path / "straight"
    train_sft(_config(tiny_dir, tasks_file, straight), progress=False)

    killed = tmp_path / "killed"
    real = sft_module._accumulate
    calls = {"n": 0}

    def dies_in_step_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as if killed after the step-2 checkpoint and step 3
        return real(*args, **kwargs)

    monkeypatch.setattr(sft_module, "_accumulate", dies_in_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_sft(_config(tiny_dir, tasks_file, killed), progress=False)
    monkeypatch.setattr(sft_module, "_accumulate", real)
    assert latest_checkpoint(killed / "checkpoints").step == 2
    train_sft(_config(tiny_dir, tasks_file, killed), progress=False)

    a = read_metrics(straight / "metrics.jsonl")
    b = read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]  # step 3 of the dead run was dropped
    for x, y in zip(a, b, strict=True):
        assert abs(x["loss/train"] - y["loss/train"]) < 1e-6, (x, y)
        assert x["optim/lr"] == y["optim/lr"]
    wa = load_policy(straight / "final").model.state_dict()
    wb = load_policy(killed / "final").model.state_dict()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6, rtol=0) for k in wa)


def test_final_eval_reports_pass_at_1(tiny_dir: Path, tasks_file: Path, tmp_path: Path) -> None:
    config = _config(
        tiny_dir, tasks_file, tmp_path / "run", max_steps=2, final_eval=True, eval_max_new_tokens=16
    )
    summary = train_sft(config, progress=False)
    evaluation = summary["eval"]
    assert evaluation["n_tasks"] == 6 and evaluation["n_samples"] == 6
    assert 0.0 <= evaluation["pass_at_k"]["pass@1"]["value"] <= 1.0
    assert set(evaluation["by_difficulty"]) <= {"easy", "medium", "hard"}
    assert (tmp_path / "run" / "eval" / "results.jsonl").is_file()


def test_retrieval_aware_warm_up_stores_verified_references(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    from codefalcon.memory import LongTermMemory
    from codefalcon.rl.memory_prompts import MemoryPrompts
    from codefalcon.rl.sft import _examples
    from codefalcon.tasks import load_tasks_jsonl

    config = _config(
        tiny_dir, tasks_file, tmp_path / "run", max_steps=2, memory_context={"k": 1, "fraction": 1.0}
    )
    train_sft(config, progress=False)
    with LongTermMemory(tmp_path / "run" / "memory.db") as memory:
        stats = memory.stats()
        assert stats["tasks_per_split"] == {"train": 48} and stats["attempts_per_verdict"] == {"passed": 48}
        policy = load_policy(tiny_dir)
        train = [t for t in load_tasks_jsonl(tasks_file) if t.split == "train"]
        examples, _ = _examples(policy, train[:3], config, MemoryPrompts(policy, memory, 1, 150))
        plain, _ = _examples(policy, train[:3], config)
    assert len(examples) == len(plain) >= 1
    for with_memory, without in zip(examples, plain, strict=True):
        assert len(with_memory.input_ids) > len(without.input_ids)  # retrieved context came first
        assert with_memory.labels[-without.n_answer_tokens :] == without.labels[-without.n_answer_tokens :]


def test_resume_with_another_config_is_refused_unless_allowed(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from codefalcon.rl.run_dir import ConfigChangedError

    out = tmp_path / "run"
    train_sft(_config(tiny_dir, tasks_file, out, max_steps=2), progress=False)
    saved = (out / "config.yaml").read_text()
    with pytest.raises(ConfigChangedError, match=r"grad_accum: 2 -> 1; lr: 0.003 -> 0.001\. "):
        train_sft(_config(tiny_dir, tasks_file, out, max_steps=4, lr=1e-3, grad_accum=1), progress=False)
    assert (out / "config.yaml").read_text() == saved  # a refused resume leaves the run as it was
    # a longer run that saves and evaluates at another cadence is the same experiment
    train_sft(_config(tiny_dir, tasks_file, out, max_steps=3, save_every=1, eval_every=1), progress=False)
    assert latest_checkpoint(out / "checkpoints").step == 3
    summary = train_sft(
        _config(tiny_dir, tasks_file, out, max_steps=4, lr=1e-3), progress=False, allow_config_change=True
    )
    assert summary["steps"] == 4 and "lr: 0.003 -> 0.001" in caplog.text
    assert latest_checkpoint(out / "checkpoints").state["config"]["lr"] == 1e-3


def test_warm_up_examples_are_prompted_by_the_one_prompt_builder(
    tiny_dir: Path, tasks_file: Path, tmp_path: Path
) -> None:
    from codefalcon.models.generation import encode_prompt
    from codefalcon.models.prompter import Prompter
    from codefalcon.rl.sft import _examples
    from codefalcon.tasks import load_tasks_jsonl

    policy = load_policy(tiny_dir)
    tasks = {t.task_id: t for t in load_tasks_jsonl(tasks_file) if t.split == "train"}
    examples, _ = _examples(policy, list(tasks.values())[:6], _config(tiny_dir, tasks_file, tmp_path))
    assert examples  # some are longer than the tiny model's context and dropped
    prompter = Prompter.from_policy(policy, 64)  # what RL rollouts and `codefalcon solve` use
    for example in examples:
        task = tasks[example.task_id]
        prompt_ids = encode_prompt(policy.tokenizer, prompter.base(task).text)
        assert list(example.input_ids[: len(prompt_ids)]) == prompt_ids
        assert all(label == IGNORE_INDEX for label in example.labels[: len(prompt_ids)])
