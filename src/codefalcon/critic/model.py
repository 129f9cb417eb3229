"""CodeRL's critic: a classifier of (problem, program) into test outcomes, one prediction per token.

A backbone language model reads the problem and the program; a small head,
Linear(d, 128)-ReLU-Linear(128, C), turns the hidden state at every program token into class
logits (C = 4 outcomes, or 2 for the binary variant). The program's label is the max over time of
those logits (CodeRL's max-pooling), taken over real program tokens only: padding is set to -inf
first, so it can never win.

Two backbone shapes:

- encoder-decoder (CodeT5, T5; CodeRL's choice): the problem goes to the encoder and the program
  to the decoder, after the decoder's start token;
- decoder-only causal LM: one sequence, problem + separator + program; only program positions are
  scored.

Either way, the state at program position t has read the problem and program tokens 1..t (t
included), so ``token_logits[:, t]`` is the critic's judgement of the prefix ending at token t.
(CodeRL's released code shifts by one, so its state at t has not yet read token t; including it
lets the score react to the token that the RL loss weights, and makes the per-prefix scores of
critic sampling mean "this prefix, as written".)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from codefalcon.critic.labels import Outcome, class_index, class_labels
from codefalcon.models.loading import load_policy, model_device

CriticKind = Literal["causal", "seq2seq"]
CONFIG_FILE = "critic.json"
HEAD_FILE = "head.safetensors"
BACKBONE_DIR = "backbone"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CriticConfig:
    """How a critic reads its input and what it predicts; saved beside the weights as JSON."""

    kind: CriticKind
    """"seq2seq": problem to the encoder, program to the decoder; "causal": one sequence."""
    num_classes: int = 4
    """4 (compile error, runtime error, failed test, passed) or 2 (not passed, passed)."""
    head_dim: int = 128
    """Width of the head's hidden layer (CodeRL: 128)."""
    max_problem_tokens: int = 512
    """Problem tokens kept (the start of the statement; the rest is cut)."""
    max_program_tokens: int = 512
    """Program tokens kept and scored (the start of the program; the rest is cut)."""
    separator: str = "\nANSWER:\n"
    """Text between problem and program for causal backbones (CodeRL's QA layout); unused by seq2seq."""

    def __post_init__(self) -> None:
        if self.kind not in ("causal", "seq2seq"):
            raise ValueError(f"CriticConfig.kind must be 'causal' or 'seq2seq', got {self.kind!r}")
        if self.num_classes not in (2, 4):
            raise ValueError(f"CriticConfig.num_classes must be 4 or 2 (binary), got {self.num_classes}")
        for name in ("head_dim", "max_problem_tokens", "max_program_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"CriticConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def binary(self) -> bool:
        return self.num_classes == 2

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names by index."""
        return class_labels(self.binary)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriticConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise ValueError(f"unknown critic config keys {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class CriticBatch:
    """Tokenised (problem, program) pairs, right-padded. B rows, L input and T program positions."""

    input_ids: Tensor
    """(B, L) seq2seq: the problem; causal: problem + separator + program."""
    attention_mask: Tensor
    """(B, L) 1 on real tokens of ``input_ids``."""
    program_mask: Tensor
    """(B, T) bool, True on real program tokens; every row has at least one."""
    program_start: Tensor
    """(B,) causal: index in ``input_ids`` of each row's first program token; seq2seq: zeros."""
    decoder_input_ids: Tensor | None
    """(B, T + 1) seq2seq only: the decoder start token, then the program."""
    decoder_attention_mask: Tensor | None
    """(B, T + 1) seq2seq only."""
    program_ids: tuple[tuple[int, ...], ...]
    """Each row's program token ids as scored (after truncation; ``len == program_mask[i].sum()``)."""

    def to(self, device: torch.device) -> CriticBatch:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return CriticBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.program_mask.to(device),
            self.program_start.to(device),
            move(self.decoder_input_ids),
            move(self.decoder_attention_mask),
            self.program_ids,
        )


@dataclass(frozen=True)
class CriticOutput:
    """What the critic predicts for a batch."""

    token_logits: Tensor
    """(B, T, C) class logits after each program prefix; rows past ``program_mask`` are padding."""
    program_mask: Tensor
    """(B, T) bool, True on real program tokens."""
    sequence_logits: Tensor
    """(B, C) max over real program tokens of ``token_logits`` (the program's label logits)."""


@dataclass(frozen=True)
class TokenScores:
    """The probability of one class after each program prefix."""

    probs: Tensor
    """(B, T) p(class | problem, program tokens 1..t); 0.0 at padding."""
    mask: Tensor
    """(B, T) bool, True on real program tokens."""
    program_ids: tuple[tuple[int, ...], ...]
    """The critic's tokens of each program, aligned with ``probs``."""


@dataclass(frozen=True)
class Prefix:
    """The program prefix the critic rates most likely to pass (for critic sampling)."""

    n_tokens: int
    """Program tokens in the prefix (1..T)."""
    score: float
    """The critic's pass probability after the prefix."""
    text: str
    """The prefix, decoded from the critic's tokens."""


def masked_max(token_logits: Tensor, mask: Tensor) -> Tensor:
    """Max over time of (B, T, C) logits, counting only positions where the (B, T) mask is True.

    Masked positions become -inf before the max, so padding never wins; a row with no True
    position comes out as -inf (the critic's batches never have one).

    >>> masked_max(torch.tensor([[[1.0, 0.0], [9.0, 9.0]]]), torch.tensor([[True, False]]))
    tensor([[1., 0.]])
    """
    filled = token_logits.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
    return filled.max(dim=1).values


def make_head(hidden_size: int, head_dim: int, num_classes: int) -> nn.Sequential:
    """CodeRL's critic head: Linear(d, head_dim)-ReLU-Linear(head_dim, C), applied per token."""
    return nn.Sequential(nn.Linear(hidden_size, head_dim), nn.ReLU(), nn.Linear(head_dim, num_classes))


def _pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """(B, L) ids and attention mask of right-padded rows."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


class Critic(nn.Module):
    """A backbone LM plus CodeRL's per-token outcome head. See the module docstring.

    Build one with `Critic.from_backbone` (fresh head) or `Critic.load` (a saved critic).
    """

    def __init__(self, backbone: nn.Module, tokenizer: Any, config: CriticConfig, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head.to(model_device(backbone))  # heads are built on the CPU (seeded there)
        self.tokenizer = tokenizer
        self.config = config
        eos = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        # Padding values never reach a prediction (masks), but ids must be valid embeddings.
        self._pad_id = int(pad if pad is not None else eos if eos is not None else 0)
        # An empty program still needs one state to classify; it reads as "end of text".
        self._empty_program = (int(eos if eos is not None else self._pad_id),)
        self._separator_ids = tuple(tokenizer(config.separator, add_special_tokens=False)["input_ids"])
        if config.kind == "seq2seq":
            start = getattr(backbone.config, "decoder_start_token_id", None)
            self._decoder_start = int(start if start is not None else self._pad_id)

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str | Path,
        *,
        binary: bool = False,
        head_dim: int = 128,
        max_problem_tokens: int = 512,
        max_program_tokens: int = 512,
        separator: str = "\nANSWER:\n",
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> Critic:
        """A critic with a fresh head (seeded) on a backbone from a local folder, GGUF or short name.

        The backbone is loaded with `codefalcon.models.load_policy` on ``device`` (see
        `codefalcon.models.resolve_device`); its LM head is kept (so the saved backbone is still a
        loadable policy) but never run. A causal backbone's position limit must fit the problem,
        separator and program; otherwise this says which to lower.
        """
        policy = load_policy(name_or_path, device=device)
        config = CriticConfig(
            kind=policy.kind,
            num_classes=2 if binary else 4,
            head_dim=head_dim,
            max_problem_tokens=max_problem_tokens,
            max_program_tokens=max_program_tokens,
            separator=separator,
        )
        hidden = policy.model.get_input_embeddings().embedding_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = make_head(hidden, head_dim, config.num_classes)
        critic = cls(policy.model, policy.tokenizer, config, head)
        critic._check_positions(policy.max_positions)
        return critic

    def _check_positions(self, max_positions: int | None) -> None:
        if max_positions is None or self.config.kind == "seq2seq":
            return
        cfg = self.config
        # +1: a tokenizer may add a BOS token to the problem.
        need = cfg.max_problem_tokens + len(self._separator_ids) + cfg.max_program_tokens + 1
        if need > max_positions:
            raise ValueError(
                f"the backbone reads at most {max_positions} positions but max_problem_tokens "
                f"({cfg.max_problem_tokens}) + separator + max_program_tokens "
                f"({cfg.max_program_tokens}) needs {need}; lower the two maxima"
            )

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> Critic:
        """A critic saved by `save`, in eval mode, on ``device`` (see `from_backbone`)."""
        from safetensors.torch import load_file

        folder = Path(path)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved critic (no {CONFIG_FILE})")
        config = CriticConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
        policy = load_policy(folder / BACKBONE_DIR, device=device)
        hidden = policy.model.get_input_embeddings().embedding_dim
        head = make_head(hidden, config.head_dim, config.num_classes)
        head.load_state_dict(load_file(folder / HEAD_FILE))
        return cls(policy.model, policy.tokenizer, config, head).eval()

    def save(self, path: str | Path) -> Path:
        """Write ``critic.json``, ``head.safetensors`` and ``backbone/`` (model + tokenizer)."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(folder / BACKBONE_DIR)
        self.tokenizer.save_pretrained(folder / BACKBONE_DIR)
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, folder / HEAD_FILE)
        data = {"format": _FORMAT_VERSION, **asdict(self.config)}
        (folder / CONFIG_FILE).write_text(json.dumps(data, indent=2) + "\n")
        return folder

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def encode(self, problems: Sequence[str], programs: Sequence[str]) -> CriticBatch:
        """Tokenise and pad (problem, program) pairs; see `collate`."""
        if len(problems) != len(programs):
            raise ValueError(f"{len(problems)} problems but {len(programs)} programs")
        if not problems:
            raise ValueError("the critic needs at least one (problem, program) pair")
        tok = self.tokenizer
        problem_ids = tok(
            list(problems),
            add_special_tokens=True,
            truncation=True,
            max_length=self.config.max_problem_tokens,
        )["input_ids"]
        program_ids = tok(list(programs), add_special_tokens=False)["input_ids"]
        return self.collate(problem_ids, program_ids)

    def collate(
        self, problem_ids: Sequence[Sequence[int]], program_ids: Sequence[Sequence[int]]
    ) -> CriticBatch:
        """Pad pre-tokenised pairs into a batch (for callers that hold the policy's token ids).

        Problems and programs are cut to the configured maxima (their starts are kept); an empty
        program becomes one end-of-text token.
        """
        cfg = self.config
        problems = [tuple(ids[: cfg.max_problem_tokens]) for ids in problem_ids]
        programs = [tuple(ids[: cfg.max_program_tokens]) or self._empty_program for ids in program_ids]
        _, program_mask = _pad_right(programs, self._pad_id)
        if cfg.kind == "seq2seq":
            input_ids, attention_mask = _pad_right(problems, self._pad_id)
            decoder_ids, decoder_mask = _pad_right(
                [(self._decoder_start, *p) for p in programs], self._pad_id
            )
            start = torch.zeros(len(programs), dtype=torch.long)
        else:
            rows = [(*q, *self._separator_ids, *p) for q, p in zip(problems, programs, strict=True)]
            input_ids, attention_mask = _pad_right(rows, self._pad_id)
            decoder_ids = decoder_mask = None
            start = torch.tensor([len(q) + len(self._separator_ids) for q in problems], dtype=torch.long)
        return CriticBatch(
            input_ids, attention_mask, program_mask.bool(), start, decoder_ids, decoder_mask, tuple(programs)
        )

    def program_states(self, batch: CriticBatch) -> Tensor:
        """(B, T, d) the backbone's last hidden state at each program token."""
        if self.config.kind == "seq2seq":
            encoded = self.backbone.get_encoder()(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask
            ).last_hidden_state
            decoded = self.backbone.get_decoder()(
                input_ids=batch.decoder_input_ids,
                attention_mask=batch.decoder_attention_mask,
                encoder_hidden_states=encoded,
                encoder_attention_mask=batch.attention_mask,
                use_cache=False,
            ).last_hidden_state  # (B, T + 1, d)
            return decoded[:, 1:]  # drop the start token's state: it has read no program token
        hidden = self._causal_states(batch.input_ids, batch.attention_mask)  # (B, L, d)
        T = batch.program_mask.shape[1]
        index = batch.program_start[:, None] + torch.arange(T, device=hidden.device)[None]  # (B, T)
        # Rows shorter than the longest gather clamped (padding) positions; the mask hides them.
        index = index.clamp(max=hidden.shape[1] - 1)
        return hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))

    def _causal_states(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        base = self.backbone.base_model
        if base is not self.backbone:  # the bare transformer: skips the vocabulary projection
            return base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        out = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False
        )
        return out.hidden_states[-1]

    def forward(self, batch: CriticBatch) -> CriticOutput:
        batch = batch.to(self.device)
        token_logits = self.head(self.program_states(batch))  # (B, T, C)
        return CriticOutput(token_logits, batch.program_mask, masked_max(token_logits, batch.program_mask))

    @torch.no_grad()
    def predict(self, problems: Sequence[str], programs: Sequence[str]) -> Tensor:
        """(B, C) class probabilities of whole programs (softmax of the max-pooled logits)."""
        with _eval_mode(self):
            return self(self.encode(problems, programs)).sequence_logits.softmax(-1).cpu()

    @torch.no_grad()
    def token_scores(
        self, problems: Sequence[str], programs: Sequence[str], outcomes: Outcome | Sequence[Outcome]
    ) -> TokenScores:
        """p_critic(outcome | problem, program tokens 1..t) at every program token t, without grad.

        This is the factor of CodeRL's token return R_t = p_critic(observed outcome at t) x
        (r - r_baseline). ``outcomes``: one per row, or one for all rows. A binary critic scores
        "passed" for PASSED and "not passed" for every other outcome.
        """
        rows = [outcomes] * len(programs) if isinstance(outcomes, Outcome) else list(outcomes)
        if len(rows) != len(programs):
            raise ValueError(f"{len(rows)} outcomes for {len(programs)} programs")
        batch = self.encode(problems, programs)
        with _eval_mode(self):
            out = self(batch)
        probs = out.token_logits.softmax(-1)  # (B, T, C)
        index = torch.tensor([class_index(o, self.config.binary) for o in rows], device=probs.device)
        chosen = probs.gather(-1, index[:, None, None].expand(-1, probs.shape[1], 1)).squeeze(-1)
        chosen = chosen.masked_fill(~out.program_mask, 0.0)  # (B, T)
        return TokenScores(chosen.cpu(), out.program_mask.cpu(), batch.program_ids)

    def pass_scores(self, problems: Sequence[str], programs: Sequence[str]) -> TokenScores:
        """p_critic(passed | problem, program tokens 1..t): which prefixes look right so far."""
        return self.token_scores(problems, programs, Outcome.PASSED)

    def best_prefixes(self, problems: Sequence[str], programs: Sequence[str]) -> list[Prefix]:
        """For each program, the prefix with the highest pass probability (CodeRL's refine step).

        Critic sampling keeps this prefix of a program that passed the example tests and samples
        new endings from it. Ties go to the shortest prefix.
        """
        scores = self.pass_scores(problems, programs)
        prefixes = []
        for row, ids in enumerate(scores.program_ids):
            valid = scores.probs[row, : len(ids)]
            best = int(valid.argmax())
            text = self.tokenizer.decode(list(ids[: best + 1]), skip_special_tokens=False)
            prefixes.append(Prefix(best + 1, float(valid[best]), text))
        return prefixes


class _eval_mode:
    """Context manager: the module in eval mode (no dropout) inside, its old mode restored after."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.was_training = module.training

    def __enter__(self) -> nn.Module:
        return self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)
