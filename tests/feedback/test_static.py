"""Static rewards: ruff density, radon complexity and maintainability, all in [0, 1]."""

from __future__ import annotations

import pytest

from codefalcon.feedback import complexity_reward, maintainability_reward, parse_error, ruff_reward
from codefalcon.feedback.static import ruff_violations

CLEAN = "def add(a, b):\n    return a + b\n"
BROKEN = "def add(a, b)\n    return a + b\n"


def branchy(n: int) -> str:
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(n))
    return f"def pick(x):\n{body}    return -1\n"


@pytest.mark.parametrize("score", [ruff_reward, complexity_reward, maintainability_reward])
def test_unparseable_programs_get_zero(score) -> None:
    reward = score(BROKEN)
    assert reward.value == 0.0
    assert reward.explanation.startswith("does not parse: SyntaxError at line 1")


@pytest.mark.parametrize("score", [ruff_reward, complexity_reward])
def test_clean_program_scores_one(score) -> None:
    assert score(CLEAN).value == 1.0


@pytest.mark.parametrize("score", [ruff_reward, complexity_reward, maintainability_reward])
def test_values_in_unit_interval_and_deterministic(score) -> None:
    for program in (CLEAN, branchy(12), "import os\n" * 30):
        assert 0.0 <= score(program).value <= 1.0
        assert score(program) == score(program)


def test_ruff_density_normalisation() -> None:
    # 2 violations (F401 unused import, E711 comparison to None) in 4 non-blank lines:
    # d = 0.5, value = 1 / (1 + 10 * 0.5) = 1/6.
    program = "import os\n\ndef f(x):\n    if x == None:\n        return 1\n"
    reward = ruff_reward(program)
    assert reward.value == pytest.approx(1 / 6, abs=1e-12)
    assert reward.explanation == "2 ruff violations in 4 lines: E711, F401"


def test_ruff_ignores_user_config(tmp_path, monkeypatch) -> None:
    # A project config that ignores everything must not change the result (--isolated).
    (tmp_path / "pyproject.toml").write_text('[tool.ruff.lint]\nignore = ["F", "E"]\n')
    monkeypatch.chdir(tmp_path)
    assert [v["code"] for v in ruff_violations("import os\n")] == ["F401"]


def test_missing_final_newline_is_not_a_violation() -> None:
    assert ruff_reward("x = 1").value == 1.0


def test_ruff_unavailable_is_missing(tmp_path) -> None:
    reward = ruff_reward(CLEAN, ruff=str(tmp_path / "no-such-ruff"))
    assert reward.value is None and "ruff did not run" in reward.explanation


def test_complexity_normalisation() -> None:
    # 12 ifs: cyclomatic complexity 13, value 5/13.
    reward = complexity_reward(branchy(12))
    assert reward.value == pytest.approx(5 / 13, abs=1e-12)
    assert reward.explanation == "worst cyclomatic complexity 13 (pick)"
    assert complexity_reward(branchy(4)).value == 1.0  # complexity 5: rank A


def test_complexity_counts_module_level_code() -> None:
    script = "n = int(input())\n" + "".join(f"if n == {i}:\n    print({i})\n" for i in range(9))
    reward = complexity_reward(script)
    assert reward.value == pytest.approx(0.5, abs=1e-12)  # 1 + 9 branches = 10
    assert "module level" in reward.explanation


def test_complexity_uses_methods_not_classes() -> None:
    program = "class A:\n    def f(self, x):\n        return 1 if x else 2\n"
    assert complexity_reward(program).explanation == "worst cyclomatic complexity 2 (A.f)"


def test_maintainability_is_index_over_100() -> None:
    reward = maintainability_reward(branchy(12))
    index = float(reward.explanation.rsplit(" ", 1)[1])
    assert 0.0 < reward.value < 1.0
    assert reward.value == pytest.approx(index / 100, abs=1e-3)


def test_parse_error_handles_null_bytes() -> None:
    assert parse_error("x = 1\0") is not None
