"""Model soups: the weighted mean of state dicts on hand-computed numbers, and of merged adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codefalcon.models import LoraSpec, load_policy
from codefalcon.models.backends.common import plain_model
from codefalcon.models.soup import average_state_dicts, member_weights, soup_policy, soup_weights


def test_weights_are_scaled_to_sum_to_one_and_checked() -> None:
    assert soup_weights(4) == [0.25] * 4
    assert soup_weights(3, [2, 0, 2]) == [0.5, 0.0, 0.5]
    for bad, message in (([1], "1 weights for 2"), ([1, -1], ">= 0"), ([0, 0], "positive sum")):
        with pytest.raises(ValueError, match=message):
            soup_weights(2, bad)
    with pytest.raises(ValueError, match="at least one"):
        soup_weights(0)


def test_member_weights_put_the_base_last_on_the_adapters_scale() -> None:
    assert member_weights(2) == [0.5, 0.5]
    assert member_weights(1, base_weight=1) == [0.5, 0.5]
    assert member_weights(1, base_weight=3) == [0.25, 0.75]
    assert member_weights(2, [1, 2], base_weight=1) == [0.25, 0.5, 0.25]
    with pytest.raises(ValueError, match="base's weight must be >= 0"):
        member_weights(1, base_weight=-1)
    with pytest.raises(ValueError, match="1 weights for 2"):  # the adapters' count, not 3
        member_weights(2, [1], base_weight=1)


def test_average_of_state_dicts_by_hand() -> None:
    a = {
        "w": torch.tensor([1.0, 2.0]),
        "h": torch.tensor([0.5], dtype=torch.bfloat16),
        "n": torch.tensor([3]),
    }
    b = {
        "w": torch.tensor([3.0, 6.0]),
        "h": torch.tensor([1.5], dtype=torch.bfloat16),
        "n": torch.tensor([3]),
    }
    got = average_state_dicts([a, b], [1, 3])  # 0.25 a + 0.75 b
    assert got["w"].tolist() == [2.5, 5.0]
    assert got["h"].dtype == torch.bfloat16 and got["h"].item() == 1.25
    assert got["n"].tolist() == [3] and got["n"].dtype == torch.int64
    assert average_state_dicts([a, b])["w"].tolist() == [2.0, 4.0]
    assert a["w"].tolist() == [1.0, 2.0]  # the members are not changed


def test_average_refuses_members_that_do_not_match() -> None:
    a = {"w": torch.zeros(2), "n": torch.tensor([1])}
    with pytest.raises(ValueError, match="member 1 has different weights"):
        average_state_dicts([a, {"w": torch.zeros(2)}])
    with pytest.raises(ValueError, match="w: members disagree on its shape"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": torch.tensor([1])}])
    with pytest.raises(ValueError, match="n: an integer buffer"):
        average_state_dicts([a, {"w": torch.zeros(2), "n": torch.tensor([2])}])


def _trained_adapter(tiny_dir: Path, out: Path, seed: int) -> Path:
    """An adapter whose B is no longer zero, so merging it changes the weights."""
    torch.manual_seed(seed)
    policy = load_policy(tiny_dir, lora=LoraSpec(r=2, dropout=0.0), device="cpu")
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    policy.model.save_pretrained(out)
    return out


def _merged(tiny_dir: Path, adapter: Path) -> dict[str, torch.Tensor]:
    return plain_model(load_policy(tiny_dir, lora=adapter, device="cpu")).state_dict()


def test_soup_of_adapters_is_the_mean_of_their_merged_weights(tmp_path: Path, tiny_dir: Path) -> None:
    one = _trained_adapter(tiny_dir, tmp_path / "one", seed=1)
    two = _trained_adapter(tiny_dir, tmp_path / "two", seed=2)
    m1, m2 = _merged(tiny_dir, one), _merged(tiny_dir, two)
    changed = [k for k in m1 if not torch.equal(m1[k], m2[k])]
    assert changed  # the members differ, so the mean is a real test
    soup = soup_policy(tiny_dir, [one, two], [1, 3]).model.state_dict()
    for key in m1:
        assert torch.allclose(soup[key], 0.25 * m1[key] + 0.75 * m2[key], atol=1e-6), key
    alone = soup_policy(tiny_dir, [one, two], [1, 0]).model.state_dict()
    assert all(torch.allclose(alone[k], m1[k], atol=1e-6) for k in m1)
    ids = torch.tensor([[5, 17, 42, 9, 3]])
    with torch.no_grad():  # the loaded weights are the ones the model computes with
        logits = soup_policy(tiny_dir, [one]).model(ids).logits
        expected = load_policy(tiny_dir, lora=one, device="cpu").model(ids).logits
    assert torch.allclose(logits, expected, atol=1e-4)


def test_the_base_as_a_member_interpolates_towards_it(tmp_path: Path, tiny_dir: Path) -> None:
    one = _trained_adapter(tiny_dir, tmp_path / "one", seed=1)
    merged = _merged(tiny_dir, one)
    base = load_policy(tiny_dir, device="cpu").model.state_dict()
    assert any(not torch.equal(merged[k], base[k]) for k in base)
    soup = soup_policy(tiny_dir, [one], base_weight=3).model.state_dict()  # 1/4 adapter, 3/4 base
    for key in base:
        assert torch.allclose(soup[key], 0.25 * merged[key] + 0.75 * base[key], atol=1e-6), key
