from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from codefalcon.critic import Critic, CriticConfig, Outcome, masked_max

PROBLEMS = ["Write a function that adds two numbers.", "Read n and print n squared."]
PROGRAMS = ["def add(a, b):\n    return a + b\n", "n = int(input())\nprint(n * n)\n"]


def test_masked_max_ignores_padding_even_when_it_is_larger() -> None:
    # Row 0 has 2 real tokens, row 1 has 1; padding holds 100s that would win an unmasked max.
    logits = torch.tensor(
        [
            [[1.0, -2.0], [0.5, 3.0], [100.0, 100.0]],
            [[-1.0, -4.0], [100.0, 100.0], [100.0, 100.0]],
        ]
    )
    mask = torch.tensor([[True, True, False], [True, False, False]])
    # Row 0: max(1, 0.5) = 1, max(-2, 3) = 3.  Row 1: the only real token, (-1, -4).
    expected = torch.tensor([[1.0, 3.0], [-1.0, -4.0]])
    torch.testing.assert_close(masked_max(logits, mask), expected, atol=0, rtol=0)


def test_masked_max_of_an_all_padding_row_is_minus_inf() -> None:
    out = masked_max(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.bool))
    assert torch.isneginf(out).all()


@pytest.mark.parametrize("binary", [False, True])
def test_shapes(backbone_dir: Path, make_critic, binary: bool) -> None:
    critic = make_critic(backbone_dir, binary=binary)
    batch = critic.encode(PROBLEMS, PROGRAMS)
    out = critic(batch)
    B, T, C = 2, batch.program_mask.shape[1], 2 if binary else 4
    assert out.token_logits.shape == (B, T, C)
    assert out.sequence_logits.shape == (B, C)
    assert out.program_mask.shape == (B, T)
    lengths = batch.program_mask.sum(1).tolist()
    assert lengths == [len(ids) for ids in batch.program_ids]
    assert max(lengths) == T
    assert critic.config.kind == ("seq2seq" if "t5" in backbone_dir.name else "causal")


def test_program_tokens_are_the_tokenizers(gpt2_dir: Path, make_critic) -> None:
    critic = make_critic(gpt2_dir)
    batch = critic.encode(PROBLEMS, PROGRAMS)
    for program, ids in zip(PROGRAMS, batch.program_ids, strict=True):
        assert critic.tokenizer.decode(list(ids)) == program
    # The program sits after problem + separator in the causal input.
    row = batch.input_ids[0]
    start = int(batch.program_start[0])
    assert row[start : start + len(batch.program_ids[0])].tolist() == list(batch.program_ids[0])


def test_padding_never_wins_the_max_pool(backbone_dir: Path, make_critic, monkeypatch) -> None:
    critic = make_critic(backbone_dir)
    batch = critic.encode(PROBLEMS, ["x = 1\n", PROGRAMS[1]])  # row 0 is much shorter
    states = critic.program_states

    def loud_padding(b):
        # Padding states far from anything real: the head's logits there are huge.
        real = states(b)
        return torch.where(b.program_mask[..., None], real, torch.full_like(real, 1e3))

    monkeypatch.setattr(critic, "program_states", loud_padding)
    out = critic(batch)
    n = len(batch.program_ids[0])
    assert n < batch.program_mask.shape[1]
    padded_max = out.token_logits[0].max(0).values
    real_max = out.token_logits[0, :n].max(0).values
    assert not torch.allclose(padded_max, real_max)  # the case is real: padding would have won
    torch.testing.assert_close(out.sequence_logits[0], real_max, atol=0, rtol=0)


def test_batching_does_not_change_predictions(backbone_dir: Path, make_critic) -> None:
    critic = make_critic(backbone_dir)
    together = critic(critic.encode(PROBLEMS, PROGRAMS))
    for i in range(2):
        alone = critic(critic.encode(PROBLEMS[i : i + 1], PROGRAMS[i : i + 1]))
        n = alone.token_logits.shape[1]
        torch.testing.assert_close(together.token_logits[i, :n], alone.token_logits[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(together.sequence_logits[i], alone.sequence_logits[0], atol=1e-5, rtol=0)


def test_empty_program_is_one_end_token(gpt2_dir: Path, make_critic) -> None:
    critic = make_critic(gpt2_dir)
    batch = critic.encode(["p"], [""])
    assert batch.program_ids == ((critic.tokenizer.eos_token_id,),)
    assert torch.isfinite(critic(batch).sequence_logits).all()


def test_long_inputs_are_cut_to_the_maxima(backbone_dir: Path, make_critic) -> None:
    critic = make_critic(backbone_dir)
    batch = critic.encode(["word " * 500], ["x = 1\n" * 500])
    assert len(batch.program_ids[0]) == critic.config.max_program_tokens
    if critic.config.kind == "seq2seq":
        assert batch.input_ids.shape[1] <= critic.config.max_problem_tokens
    assert torch.isfinite(critic(batch).sequence_logits).all()


def test_collate_of_token_ids_matches_encode(backbone_dir: Path, make_critic) -> None:
    critic = make_critic(backbone_dir)
    encoded = critic.encode(PROBLEMS, PROGRAMS)
    tok = critic.tokenizer
    problem_ids = tok(PROBLEMS, add_special_tokens=True)["input_ids"]
    program_ids = [list(ids) for ids in encoded.program_ids]
    collated = critic.collate(problem_ids, program_ids)
    assert torch.equal(collated.input_ids, encoded.input_ids)
    assert torch.equal(critic(collated).token_logits, critic(encoded).token_logits)


def test_token_scores_are_probabilities_of_the_asked_outcome(backbone_dir: Path, make_critic) -> None:
    critic = make_critic(backbone_dir)
    per_outcome = [critic.token_scores(PROBLEMS, PROGRAMS, o) for o in Outcome]
    scores = per_outcome[0]
    assert scores.probs.shape == scores.mask.shape
    assert (scores.probs[~scores.mask] == 0).all()
    total = sum(s.probs for s in per_outcome)
    torch.testing.assert_close(total[scores.mask], torch.ones(int(scores.mask.sum())), atol=1e-6, rtol=0)
    # One outcome per row picks that row's class.
    mixed = critic.token_scores(PROBLEMS, PROGRAMS, [Outcome.PASSED, Outcome.COMPILE_ERROR])
    torch.testing.assert_close(mixed.probs[0], per_outcome[Outcome.PASSED].probs[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed.probs[1], per_outcome[Outcome.COMPILE_ERROR].probs[1], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="outcomes"):
        critic.token_scores(PROBLEMS, PROGRAMS, [Outcome.PASSED])


def test_token_scores_leave_the_mode_and_take_no_gradient(gpt2_dir: Path, make_critic) -> None:
    critic = make_critic(gpt2_dir).train()
    scores = critic.token_scores(PROBLEMS, PROGRAMS, Outcome.PASSED)
    assert critic.training
    assert not scores.probs.requires_grad
    # Eval mode inside: no dropout, so two calls agree exactly.
    assert torch.equal(scores.probs, critic.token_scores(PROBLEMS, PROGRAMS, Outcome.PASSED).probs)


def test_binary_scores(gpt2_dir: Path, make_critic) -> None:
    critic = make_critic(gpt2_dir, binary=True)
    passed = critic.token_scores(PROBLEMS, PROGRAMS, Outcome.PASSED)
    failed = critic.token_scores(PROBLEMS, PROGRAMS, Outcome.RUNTIME_ERROR)
    torch.testing.assert_close(
        (passed.probs + failed.probs)[passed.mask], torch.ones(int(passed.mask.sum())), atol=1e-6, rtol=0
    )
    assert critic.predict(PROBLEMS, PROGRAMS).shape == (2, 2)


def test_best_prefix_is_the_highest_pass_score(backbone_dir: Path, make_critic) -> None:
    critic = make_critic(backbone_dir)
    prefixes = critic.best_prefixes(PROBLEMS, PROGRAMS)
    scores = critic.pass_scores(PROBLEMS, PROGRAMS)
    for row, (prefix, program) in enumerate(zip(prefixes, PROGRAMS, strict=True)):
        n = len(scores.program_ids[row])
        assert 1 <= prefix.n_tokens <= n
        assert prefix.score == pytest.approx(float(scores.probs[row, :n].max()), abs=1e-6)
        assert program.startswith(prefix.text)


@pytest.mark.parametrize("binary", [False, True])
def test_save_and_load_give_identical_outputs(
    backbone_dir: Path, make_critic, tmp_path: Path, binary: bool
) -> None:
    critic = make_critic(backbone_dir, binary=binary, seed=3)
    folder = critic.save(tmp_path / "critic")
    assert json.loads((folder / "critic.json").read_text())["num_classes"] == (2 if binary else 4)
    loaded = Critic.load(folder)
    assert loaded.config == critic.config
    assert not loaded.training
    batch = critic.encode(PROBLEMS, PROGRAMS)
    assert torch.equal(loaded(batch).token_logits, critic(batch).token_logits)


def test_load_rejects_a_folder_without_a_critic(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a saved critic"):
        Critic.load(tmp_path)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        CriticConfig(kind="causal", num_classes=3)
    with pytest.raises(ValueError, match="unknown critic config keys"):
        CriticConfig.from_dict({"kind": "causal", "colour": "red"})


def test_causal_backbone_must_fit_the_maxima(gpt2_dir: Path) -> None:
    with pytest.raises(ValueError, match="lower the two maxima"):
        Critic.from_backbone(gpt2_dir, max_problem_tokens=200, max_program_tokens=200)


def test_fresh_heads_are_seeded(gpt2_dir: Path, make_critic) -> None:
    state = torch.random.get_rng_state()
    a, b, c = make_critic(gpt2_dir, seed=1), make_critic(gpt2_dir, seed=1), make_critic(gpt2_dir, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert torch.equal(a.head[0].weight, b.head[0].weight)
    assert not torch.equal(a.head[0].weight, c.head[0].weight)
