"""CTranslate2 back-end: a policy converted to CTranslate2's format, sampled by its C++ engine.

The light alternative to vLLM on a CPU: a 43 MB wheel, no torch of its own, conversion in
seconds. The policy is converted from memory (no checkpoint written first) and re-converted on
every `CT2Backend.sync`. ``compute_type="float32"`` decodes like HF (greedy agrees token for
token); ``"int8"`` quantises the weights at conversion (faster, but greedy outputs drift from
HF within a few dozen tokens). Decoder-only models only.

What differs from `HFBackend` (CTranslate2's limits, see docs/models.md):

- Seeds: CTranslate2 has no per-request seed, only one RNG per engine thread, seeded when the
  engine loads. The engine is reloaded with ``SamplingParams.seed`` whenever a sampled call
  brings a new seed, so the same calls in the same order on a fresh back-end give the same
  samples; but sample j of a prompt depends on the batch it is drawn in, unlike HF and vLLM.
- Log-probs: CTranslate2 reports the log-probability under the untempered model, so
  ``Completion.logprobs`` is given for greedy decoding and temperature 1 only (None otherwise).
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from codefalcon.models.backends.common import default_threads, import_engine, plain_model
from codefalcon.models.generation import (
    Completion,
    SamplingParams,
    encode_for_generation,
    eos_token_ids,
    fan_out,
    finish_row,
)
from codefalcon.models.loading import Policy

ComputeType = Literal["float32", "int8", "int8_float32", "int16", "float16", "bfloat16", "int8_float16"]


class CT2Backend:
    """`GenerationBackend` over a CTranslate2 ``Generator`` holding a converted copy of a policy.

    ``compute_type``: weights and arithmetic (float32 agrees with HF; int8 was about 2x faster
    than float32 on SmolLM2 here, see docs/models.md). ``threads``: CTranslate2's intra-op
    threads (default: the cores minus one, `default_threads`). ``batch_size``: most rows per
    engine call. ``device``: "cpu" or "cuda".
    """

    def __init__(
        self,
        policy: Policy,
        *,
        compute_type: ComputeType = "float32",
        threads: int | None = None,
        batch_size: int = 16,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        if policy.kind != "causal":
            raise ValueError(
                f"the ctranslate2 back-end runs decoder-only models, not {policy.kind} ({policy.name})"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._ct2 = import_engine("ctranslate2")
        self.compute_type = compute_type
        self.threads = threads if threads is not None else default_threads()
        self.batch_size = batch_size
        self.device = device
        self.workdir = Path(tempfile.mkdtemp(prefix="codefalcon-ct2-"))
        self._syncs = 0
        self._seed = seed
        self._model_dir: Path | None = None
        self.generator: Any = None
        self.sync(policy)

    # --- weights

    def sync(self, policy: Policy) -> None:
        """Convert the policy's current weights (LoRA merged) and load them into a new engine."""
        self.tokenizer = policy.tokenizer
        self.eos_ids = eos_token_ids(policy.tokenizer, policy.model.generation_config)
        self.max_positions = policy.max_positions
        self._syncs += 1
        out = self.workdir / f"model-{self._syncs}"
        model = plain_model(policy)
        if model is policy.model:  # the converter damages what it reads (see `_MemoryConverter`)
            model = copy.deepcopy(model)
        _MemoryConverter.new(self._ct2, model, policy.tokenizer, self.workdir).convert(
            str(out), quantization=self.compute_type, force=True
        )
        _fix_config(out / "config.json")
        self._load(out, self._seed)

    def _load(self, model_dir: Path, seed: int) -> None:
        """A fresh engine on ``model_dir``: its threads seed their RNG from ``seed`` on start."""
        previous = self._model_dir
        self.generator = None  # frees the old engine before the new one takes memory
        self._ct2.set_random_seed(seed)
        self.generator = self._ct2.Generator(
            str(model_dir), device=self.device, compute_type=self.compute_type, intra_threads=self.threads
        )
        self._seed, self._model_dir = seed, model_dir
        if previous is not None and previous != model_dir:
            shutil.rmtree(previous, ignore_errors=True)

    def close(self) -> None:
        self.generator = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- sampling

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, *, first_sample: int = 0
    ) -> list[list[Completion]]:
        """``n`` completions per prompt (see the module docstring for how seeds differ)."""
        encoded = [
            encode_for_generation(self.tokenizer, p, params.max_new_tokens, self.max_positions)
            for p in prompts
        ]
        return fan_out(self.generate_rows, prompts, encoded, params, n, first_sample)

    def generate_rows(
        self, rows: Sequence[tuple[list[int], bool]], seeds: Sequence[int], params: SamplingParams
    ) -> list[Completion]:
        """One completion per encoded row, in row order (``seeds`` unused: one engine RNG)."""
        if not params.greedy and params.seed != self._seed:
            assert self._model_dir is not None
            self._load(self._model_dir, params.seed)
        # CTranslate2 feeds a batch's common prompt length at once and the rest token by token;
        # with a one-token prompt in a mixed batch its results come back shifted (4.8.5), so
        # one-token prompts go in batches of their own. Rows sorted by length limit the rest.
        order = sorted(range(len(rows)), key=lambda k: (len(rows[k][0]) > 1, len(rows[k][0])))
        results: list[Completion | None] = [None] * len(rows)
        start = 0
        while start < len(order):
            single = len(rows[order[start]][0]) == 1
            chunk = order[start : start + self.batch_size]
            chunk = [k for k in chunk if (len(rows[k][0]) == 1) == single]
            completions = self._generate_batch([rows[k] for k in chunk], params)
            for k, completion in zip(chunk, completions, strict=True):
                results[k] = completion
            start += len(chunk)
        return results  # type: ignore[return-value]  # every slot filled above

    def _generate_batch(self, rows: list[tuple[list[int], bool]], params: SamplingParams) -> list[Completion]:
        """One ``generate_batch`` call; tokens, log-probs and stops come through its callback."""
        tokens: list[list[int]] = [[] for _ in rows]
        logprobs: list[list[float]] = [[] for _ in rows]
        stopper = _StopWatch(self.tokenizer, params.stop)

        def on_token(step: Any) -> bool:
            tokens[step.batch_id].append(step.token_id)
            logprobs[step.batch_id].append(step.log_prob if step.log_prob is not None else float("nan"))
            return stopper.hit(tokens[step.batch_id])

        self.generator.generate_batch(
            [self.tokenizer.convert_ids_to_tokens(ids) for ids, _ in rows],
            max_length=params.max_new_tokens,
            include_prompt_in_result=False,
            end_token=self.eos_ids,
            return_scores=params.logprobs,
            sampling_topk=1 if params.greedy else params.top_k,
            sampling_topp=1.0 if params.greedy else params.top_p,
            sampling_temperature=1.0 if params.greedy else params.temperature,
            callback=on_token,
        )
        # CTranslate2's log-probs are untempered: right only for greedy and temperature 1.
        untempered = params.greedy or params.temperature == 1.0
        keep = params.logprobs and untempered
        return [
            finish_row(self.tokenizer, ids, self.eos_ids, params.stop, truncated, lps if keep else None)
            for ids, lps, (_, truncated) in zip(tokens, logprobs, rows, strict=True)
        ]


class _StopWatch:
    """Whether a row's generated text now contains a stop sequence (decodes only its tail)."""

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.window = max((len(s) for s in self.stops), default=0) + 1

    def hit(self, ids: list[int]) -> bool:
        if not self.stops:
            return False
        text = self.tokenizer.decode(ids[-self.window :], skip_special_tokens=False)
        return any(stop in text for stop in self.stops)


class _MemoryConverter:
    """CTranslate2's Transformers converter fed an in-memory model instead of a checkpoint.

    The converter reads only ``config.json`` from its folder (written here) and takes the model
    and tokenizer from `load_model` / `load_tokenizer`, which are overridden. It must be given a
    copy of the trainer's model: CTranslate2 4.8.5 quantises to int8 in the tensors it reads
    (the embedding and linear weights change) and its Llama loader deletes each layer's
    ``self_attn`` and ``mlp`` once read.
    """

    @staticmethod
    def new(ct2: Any, model: Any, tokenizer: Any, workdir: Path) -> Any:
        base = ct2.converters.TransformersConverter

        class Converter(base):  # type: ignore[misc, valid-type]
            def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
                return model

            def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
                return tokenizer

        folder = workdir / "config"
        model.config.save_pretrained(folder)
        return Converter(str(folder))


def _fix_config(path: Path) -> None:
    """Give the converted model an unk token when the tokenizer has none (CTranslate2 4.8.5
    refuses to load a null one); the eos token stands in, it is never generated as unk."""
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("unk_token") is None:
        config["unk_token"] = config.get("eos_token") or config.get("bos_token")
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
