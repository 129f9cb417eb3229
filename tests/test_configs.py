"""Typed configs: YAML plus key=value overrides, with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from codefalcon.configs import ConfigError, StrictModel, dump_config, load_config


class Optim(StrictModel):
    lr: float = Field(default=1e-3, gt=0)


class Demo(StrictModel):
    model: str
    steps: int = 10
    bf16: bool = False
    optim: Optim = Optim()


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: m\nsteps: 5\noptim: {lr: 0.01}\n")
    config = load_config(Demo, path, ["steps=7", "optim.lr=3e-4", "bf16=true"])
    assert (config.model, config.steps, config.optim.lr, config.bf16) == ("m", 7, 3e-4, True)


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: m\nstepz: 5\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'stepz'"):
        load_config(Demo, path)


def test_wrong_type_names_the_nested_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"optim\.lr: .*greater than 0"):
        load_config(Demo, None, ["model=m", "optim.lr=-1"])
    with pytest.raises(ConfigError, match=r"steps: .*integer"):
        load_config(Demo, None, ["model=m", "steps=many"])


def test_missing_required_key_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model: Field required"):
        load_config(Demo, None)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Demo, tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Demo, bad)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Demo, None, ["model"])


def test_dump_round_trips(tmp_path: Path) -> None:
    config = load_config(Demo, None, ["model=m"])
    path = tmp_path / "saved.yaml"
    path.write_text(dump_config(config))
    assert load_config(Demo, path) == config


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_preset_validates(path: Path) -> None:
    from codefalcon.rl.sft import SFTConfig
    from codefalcon.rl.train_config import TrainConfig

    if path.name.startswith("run"):
        from codefalcon.pipeline import RunConfig

        config = load_config(RunConfig, path)  # validates its sft and rl sections too
        assert config.rl_config(Path(config.out_dir), "model").algo
        return
    model = SFTConfig if path.name.startswith("sft") else TrainConfig
    assert load_config(model, path).model
