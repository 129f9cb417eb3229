"""The model, training, critic and memory commands end to end on tiny inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from codefalcon.cli import app
from codefalcon.tasks.jsonl import save_tasks_jsonl
from codefalcon.tasks.synth import generate_splits

runner = CliRunner()


def _ok(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def tasks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train, test = generate_splits(6, 3, seed=4)
    path = tmp_path_factory.mktemp("cli") / "tasks.jsonl"
    save_tasks_jsonl(train + test, path)
    return path


def test_build_tiny_then_generate_resumes_then_evaluate(
    tmp_path: Path, tasks_file: Path, small_sources
) -> None:
    model = tmp_path / "tiny"
    sources = [arg for f in small_sources for arg in ("--source", str(f))]
    built = _ok(
        "model",
        "build-tiny",
        "--out",
        str(model),
        *sources,
        "--n-layer",
        "1",
        "--n-embd",
        "32",
        "--n-head",
        "2",
        "--vocab-size",
        "600",
    )
    assert json.loads(built.stdout.strip().splitlines()[-1])["n_params"] > 0
    samples = tmp_path / "s.jsonl"
    args = [
        "generate",
        "--model",
        str(model),
        "--benchmark",
        "jsonl",
        "--data",
        str(tasks_file),
        "--split",
        "test",
    ]
    args += ["--n", "2", "--temperature", "0.8", "--max-new-tokens", "8", "--out", str(samples)]
    _ok(*args, "--limit", "2")
    first = samples.read_text().splitlines()
    assert len(first) == 4 and all({"task_id", "completion", "solution"} <= set(json.loads(x)) for x in first)
    _ok(*args)  # all 3 test tasks now: the first two are kept, one more is added
    lines = samples.read_text().splitlines()
    assert lines[:4] == first and len(lines) == 6
    evaluated = _ok(
        "evaluate",
        "--benchmark",
        "jsonl",
        "--data",
        str(tasks_file),
        "--samples",
        str(samples),
        "--k",
        "1,2",
        "--json",
    )
    summary = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert summary["n_tasks"] == 3 and summary["n_samples"] == 6


def test_bad_options_are_named(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", "--model", str(tmp_path / "nope"), "--benchmark", "humaneval", "--out", "x.jsonl"]
    )
    assert result.exit_code == 2 and "--model" in result.output
    if not torch.cuda.is_available():  # on a GPU machine "cuda" is a valid choice
        result = runner.invoke(
            app,
            ["generate", "--model", "m", "--benchmark", "humaneval", "--out", "x.jsonl", "--device", "cuda"],
        )
        assert result.exit_code == 2 and "--device" in result.output and "cuda" in result.output
    result = runner.invoke(
        app, ["generate", "--model", "m", "--benchmark", "humaneval", "--out", "x", "--device", "tpu"]
    )
    assert result.exit_code == 2 and "--device" in result.output
    result = runner.invoke(app, ["sft", "model=m", "train=[]", "stepz=3", "--print-config"])
    assert result.exit_code == 2 and "unknown key 'stepz'" in result.output
    result = runner.invoke(app, ["train", "--algo", "dqn", "model=m", "train={benchmark: humaneval}"])
    assert result.exit_code == 2 and "algo" in result.output


def test_generate_reads_stop_sequences_with_their_escapes(
    tmp_path: Path, tasks_file: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codefalcon.models as models

    seen = []

    def capture(policy, tasks, n, params, out, **kwargs):
        seen.append(params.stop)
        return real(policy, tasks, n, params, out, **kwargs)

    real = models.generate_samples
    monkeypatch.setattr(models, "generate_samples", capture)
    args = ["generate", "--model", str(tiny_dir), "--benchmark", "jsonl", "--data", str(tasks_file)]
    args += ["--limit", "1", "--max-new-tokens", "4", "--out", str(tmp_path / "s.jsonl")]
    _ok(*args, "--stop", "\\n```\\n", "--stop", "#")
    assert seen == [("\n```\n", "#")]
    result = runner.invoke(app, [*args, "--stop", ""])
    assert result.exit_code == 2 and "--stop: a stop sequence cannot be empty" in result.output


def test_generate_gives_dtype_to_the_vllm_engine_not_the_policy(
    tmp_path: Path, tasks_file: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codefalcon.cli.models as commands
    from codefalcon.models import HFBackend

    seen = []

    def fake_engine(options, policy, batch_size, seed):  # vLLM itself is not installed in CI
        seen.append((options["name"], options.get("dtype"), next(policy.model.parameters()).dtype))
        return HFBackend(policy, batch_size=batch_size)

    monkeypatch.setattr(commands, "build_backend", fake_engine)
    args = ["generate", "--model", str(tiny_dir), "--benchmark", "jsonl", "--data", str(tasks_file)]
    args += ["--limit", "1", "--max-new-tokens", "2", "--dtype", "bfloat16"]
    _ok(*args, "--backend", "vllm", "--out", str(tmp_path / "v.jsonl"))
    _ok(*args, "--out", str(tmp_path / "h.jsonl"))
    assert seen == [("vllm", "bfloat16", torch.float32), ("hf", None, torch.bfloat16)]


def test_memory_add_stats_search_export(tmp_path: Path, tasks_file: Path) -> None:
    results = tmp_path / "r.jsonl"
    _ok(
        "evaluate",
        "--benchmark",
        "jsonl",
        "--data",
        str(tasks_file),
        "--samples",
        "canonical",
        "--k",
        "1",
        "--out",
        str(results),
    )
    samples = tmp_path / "s.jsonl"
    from codefalcon.tasks import load_tasks_jsonl

    tasks = load_tasks_jsonl(tasks_file)
    samples.write_text(
        "".join(json.dumps({"task_id": t.task_id, "solution": t.solutions[0]}) + "\n" for t in tasks)
    )
    store = str(tmp_path / "m.db")
    added = _ok(
        "memory",
        "add",
        "--store",
        store,
        "--samples",
        str(samples),
        "--results",
        str(results),
        "--benchmark",
        "jsonl",
        "--data",
        str(tasks_file),
    )
    assert "9" in added.stdout
    stats = json.loads(_ok("memory", "stats", "--store", store).stdout.strip().splitlines()[-1])
    assert stats["n_attempts"] == 9 and stats["tasks_per_split"] == {"train": 6, "test": 3}
    query = next(t.task_id for t in tasks if t.split == "train")
    found = json.loads(
        _ok("memory", "search", "--store", store, query, "--k", "2").stdout.strip().splitlines()[-1]
    )
    assert found["examples"] and all(e["task_id"] != query for e in found["examples"])
    assert all(e["task_id"].startswith("synth/train/") for e in found["examples"])  # never test tasks
    out = tmp_path / "export.jsonl"
    _ok("memory", "export", "--store", store, "--out", str(out))
    assert len(out.read_text().splitlines()) == 9


def test_model_merge_writes_a_plain_folder_with_the_adapters_outputs(tmp_path: Path, tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from codefalcon.models import LoraSpec, load_policy

    policy = load_policy(tiny_dir, lora=LoraSpec(r=2, dropout=0.0))
    with torch.no_grad():  # a trained adapter: B is no longer zero, so merging changes the weights
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    adapter = tmp_path / "adapter"
    policy.model.save_pretrained(adapter)
    out = tmp_path / "merged"
    _ok("model", "merge", "--model", str(tiny_dir), "--lora", str(adapter), "--out", str(out))
    merged = AutoModelForCausalLM.from_pretrained(out)  # plain transformers, no peft
    ids = torch.tensor([[5, 17, 42, 9, 3]])
    with torch.no_grad():
        expected = policy.model.eval()(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_dir)(ids).logits
        got = merged(ids).logits
    assert torch.allclose(got, expected, atol=1e-4) and not torch.allclose(got, base, atol=1e-3)
    assert (out / "tokenizer.json").is_file() and not (out / "adapter_config.json").exists()

    before = sorted(p.name for p in out.iterdir())
    again = runner.invoke(
        app, ["model", "merge", "--model", str(tiny_dir), "--lora", str(adapter), "--out", str(out)]
    )
    assert again.exit_code != 0 and "--out" in again.output and "not an empty folder" in again.output
    assert sorted(p.name for p in out.iterdir()) == before
    missing = runner.invoke(
        app,
        ["model", "merge", "--model", str(tiny_dir), "--lora", str(tmp_path), "--out", str(tmp_path / "m2")],
    )
    assert missing.exit_code != 0 and "--lora" in missing.output and not (tmp_path / "m2").exists()


def test_model_soup_writes_the_average_and_refuses_bad_options(tmp_path: Path, tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from codefalcon.models import LoraSpec, load_policy

    adapters = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        policy = load_policy(tiny_dir, lora=LoraSpec(r=2, dropout=0.0))
        with torch.no_grad():
            for name, param in policy.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
        policy.model.save_pretrained(tmp_path / f"a{seed}")
        adapters.append(str(tmp_path / f"a{seed}"))
    merged = []
    for index, adapter in enumerate(adapters):
        _ok(
            "model",
            "merge",
            "--model",
            str(tiny_dir),
            "--lora",
            adapter,
            "--out",
            str(tmp_path / f"m{index}"),
        )
        merged.append(AutoModelForCausalLM.from_pretrained(tmp_path / f"m{index}").state_dict())
    soup_one = ["model", "soup", "--model", str(tiny_dir), "--lora", adapters[0]]
    out = tmp_path / "soup"
    _ok(*soup_one, "--lora", adapters[1], "--out", str(out))
    soup = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert all(torch.allclose(soup[k], (merged[0][k] + merged[1][k]) / 2, atol=1e-6) for k in soup)
    assert (out / "tokenizer.json").is_file()
    wise = _ok(*soup_one, "--base-weight", "1", "--out", str(tmp_path / "wise"))
    start = AutoModelForCausalLM.from_pretrained(tiny_dir).state_dict()
    midpoint = AutoModelForCausalLM.from_pretrained(tmp_path / "wise").state_dict()
    assert all(torch.allclose(midpoint[k], (merged[0][k] + start[k]) / 2, atol=1e-6) for k in midpoint)
    assert '"base_weight": 0.5' in wise.output

    base = [*soup_one, "--lora", adapters[1]]
    bad_weight = runner.invoke(app, [*base, "--weight", "1", "--out", str(tmp_path / "s2")])
    assert (
        bad_weight.exit_code != 0
        and "--weight" in bad_weight.output
        and "1 weights for 2" in bad_weight.output
    )
    negative = runner.invoke(app, [*base, "--weight", "1", "--weight", "-1", "--out", str(tmp_path / "s2")])
    assert negative.exit_code != 0 and "--weight" in negative.output
    bad_base = runner.invoke(app, [*base, "--base-weight", "-1", "--out", str(tmp_path / "s2")])
    assert bad_base.exit_code != 0 and "--base-weight" in bad_base.output
    no_adapter = runner.invoke(app, [*base, "--lora", str(tmp_path), "--out", str(tmp_path / "s2")])
    assert no_adapter.exit_code != 0 and "--lora" in no_adapter.output
    assert not (tmp_path / "s2").exists()
    before = sorted(p.name for p in out.iterdir())
    again = runner.invoke(app, [*base, "--out", str(out)])
    assert again.exit_code != 0 and "not an empty folder" in again.output
    assert sorted(p.name for p in out.iterdir()) == before
