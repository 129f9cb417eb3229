"""bf16 autocast: the CPU probe and the resolver are pure, so fake CPUs and devices check them."""

from __future__ import annotations

import logging

import pytest
import torch
from pydantic import ValidationError

from codefalcon.rl import optim
from codefalcon.rl.optim import (
    CpuBf16,
    autocast_enabled,
    bf16_autocast,
    cpu_bf16_from_flags,
    emulated_warning,
    read_cpuinfo,
    resolve_bf16_autocast,
)
from codefalcon.rl.sft import SFTConfig
from codefalcon.rl.train_config import TrainConfig

SAPPHIRE_RAPIDS = ["fpu", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
ZEN3 = ["fpu", "avx", "avx2", "fma"]
NATIVE = CpuBf16(True, "avx512_bf16 + amx_bf16", "Xeon")
EMULATED = CpuBf16(False, "no AVX512-BF16/AMX", "AMD EPYC 7B13")


def test_probe_reads_flags_and_pytorch_dispatch_level() -> None:
    assert cpu_bf16_from_flags(SAPPHIRE_RAPIDS, "AVX512") == CpuBf16(True, "avx512_bf16 + amx_bf16")
    assert cpu_bf16_from_flags(["avx512_bf16"], "AVX512").native  # Cooper Lake, Zen 4: no AMX
    assert cpu_bf16_from_flags(ZEN3, "AVX2") == CpuBf16(False, "no AVX512-BF16/AMX")
    assert not cpu_bf16_from_flags(ZEN3, "AVX512").native  # AVX-512 without its bf16 extension
    # the AVX2 emulation of a Sapphire Rapids: ATEN_CPU_CAPABILITY=avx2, or oneDNN held to AVX2
    emulated = cpu_bf16_from_flags(SAPPHIRE_RAPIDS, "AVX2")
    assert not emulated.native and "dispatches at AVX2" in emulated.reason
    held = cpu_bf16_from_flags(SAPPHIRE_RAPIDS, "AVX512", onednn_max_isa="AVX2")
    assert not held.native and "ONEDNN_MAX_CPU_ISA=AVX2" in held.reason
    assert cpu_bf16_from_flags(SAPPHIRE_RAPIDS, "AVX512", onednn_max_isa="avx512_core_amx").native


def test_force_overrides_the_probe_and_rejects_other_values() -> None:
    assert cpu_bf16_from_flags(ZEN3, "AVX2", force="1") == CpuBf16(True, "forced by CODEFALCON_CPU_BF16=1")
    assert not cpu_bf16_from_flags(SAPPHIRE_RAPIDS, "AVX512", force="0").native
    assert cpu_bf16_from_flags(SAPPHIRE_RAPIDS, "AVX512", force="").native  # empty = not set
    with pytest.raises(ValueError, match="CODEFALCON_CPU_BF16 must be 0 or 1"):
        cpu_bf16_from_flags(ZEN3, "AVX2", force="yes")


def test_read_cpuinfo_takes_the_first_processor() -> None:
    text = (
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n"
    )
    assert read_cpuinfo(text) == (["fpu", "avx2", "fma"], "AMD EPYC 7B13")


@pytest.mark.parametrize(
    ("setting", "device", "cpu", "enabled", "warns"),
    [
        ("auto", "cpu", NATIVE, True, False),
        ("auto", "cpu", EMULATED, False, False),
        ("auto", "cuda", NATIVE, True, False),
        ("auto", "cuda", EMULATED, True, False),  # the GPU does the arithmetic, not the CPU
        (True, "cpu", NATIVE, True, False),
        (True, "cpu", EMULATED, True, True),  # the user asked: obey, but say what it costs
        (True, "cuda", NATIVE, True, False),
        (True, "cuda", EMULATED, True, False),
        (False, "cpu", NATIVE, False, False),
        (False, "cpu", EMULATED, False, False),
        (False, "cuda", NATIVE, False, False),
        (False, "cuda", EMULATED, False, False),
        ("auto", "mps", NATIVE, False, False),
        (True, "mps", EMULATED, True, False),
    ],
)
def test_resolver(setting: bool | str, device: str, cpu: CpuBf16, enabled: bool, warns: bool) -> None:
    decision = resolve_bf16_autocast(setting, device, cpu)  # type: ignore[arg-type]
    assert decision.enabled is enabled
    assert (decision.warning is not None) is warns


def test_warning_names_the_cpu_the_reason_and_the_measured_cost() -> None:
    text = emulated_warning(EMULATED)
    assert text.startswith("bf16 autocast is emulated on this CPU (AMD EPYC 7B13: no AVX512-BF16/AMX)")
    assert "19 ms in fp32 and 127 ms under bf16 autocast (6.7x)" in text
    assert "set bf16_autocast: auto (or false)" in text
    assert resolve_bf16_autocast(True, "cpu", EMULATED).warning == text


def test_autocast_enabled_probes_once_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    optim.probe_cpu_bf16.cache_clear()
    monkeypatch.setattr(optim, "_warned", set())
    monkeypatch.setenv("CODEFALCON_CPU_BF16", "0")
    try:
        with caplog.at_level(logging.WARNING, logger="codefalcon.rl.optim"):
            assert autocast_enabled("auto", "cpu") is False
            assert autocast_enabled(True, torch.device("cpu")) is True
            assert autocast_enabled(True, "cpu") is True
        lines = [r.getMessage() for r in caplog.records]
        assert (
            sum(
                "bf16 emulated: bf16_autocast auto = off (forced by CODEFALCON_CPU_BF16=0)" in m
                for m in lines
            )
            == 1
        )
        assert sum(m.startswith("bf16 autocast is emulated on this CPU") for m in lines) == 1
        monkeypatch.setenv("CODEFALCON_CPU_BF16", "1")
        optim.probe_cpu_bf16.cache_clear()
        assert autocast_enabled("auto", "cpu") is True
    finally:
        optim.probe_cpu_bf16.cache_clear()


def test_autocast_context_refuses_an_unresolved_setting() -> None:
    with pytest.raises(TypeError, match="autocast_enabled"):
        bf16_autocast("auto", "cpu")  # type: ignore[arg-type]  # "auto" is truthy: never pass it on


def test_configs_default_to_auto_and_accept_each_setting() -> None:
    source = {"benchmark": "jsonl", "path": "x.jsonl"}
    assert SFTConfig(model="m", train=[source]).bf16_autocast == "auto"  # type: ignore[arg-type]
    assert TrainConfig(model="m", train=source).bf16_autocast == "auto"  # type: ignore[arg-type]
    for value in ("auto", True, False):
        assert TrainConfig(model="m", train=source, bf16_autocast=value).bf16_autocast == value  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="bf16_autocast"):
        SFTConfig(model="m", train=[source], bf16_autocast="sometimes")  # type: ignore[arg-type]
