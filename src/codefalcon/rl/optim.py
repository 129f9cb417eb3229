"""The step mechanics every recipe shares: bf16 autocast (and whether to use it) and a clipped step.

``bf16_autocast: auto`` (the default of `codefalcon sft`, `train` and `run`) turns autocast on
only where bfloat16 arithmetic is native: on a GPU, or on a CPU with AVX512-BF16 or AMX (Intel
Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later). Elsewhere (AVX2-only CPUs: most
laptops and cloud VMs, AMD Zen 3 and older) PyTorch emulates bf16 matmuls, which is far slower
than float32, so ``auto`` means off and an explicit ``true`` warns with the measured cost.

The decision is `resolve_bf16_autocast`, a pure function of the setting, the device type and
the CPU probe (`CpuBf16`); `probe_cpu_bf16` reads the CPU once per process (``/proc/cpuinfo``
flags, `torch.backends.cpu.get_cpu_capability()`, ``ONEDNN_MAX_CPU_ISA``) and
``CODEFALCON_CPU_BF16=0`` / ``=1`` forces its answer (tests, benchmarks, a CPU the probe gets
wrong). ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` makes a CPU with AMX behave like an
AVX2-only one (bf16 emulated), and the probe then reports it as not native.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

log = logging.getLogger(__name__)

Bf16Setting = bool | Literal["auto"]
"""A config's ``bf16_autocast``: true, false, or "auto" (on where bf16 is native)."""

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""x86 ``/proc/cpuinfo`` flags whose presence means bf16 matmuls run in hardware."""

FORCE_ENV = "CODEFALCON_CPU_BF16"
"""Environment variable forcing the CPU probe's answer: 1 = native, 0 = emulated."""

EMULATED_COST = (
    "a 512x256x1024 linear took 19 ms in fp32 and 127 ms under bf16 autocast (6.7x) on a 2-core "
    "AMD EPYC Zen 3; measure yours with benchmarks/bench_train.py"
)
"""Measured cost of emulated bf16, quoted in the warning for an explicit ``true``."""

_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "DEFAULT", "ALL")


@dataclass(frozen=True)
class CpuBf16:
    """What the CPU probe found: whether bf16 is native here, and why (for the log line)."""

    native: bool
    reason: str
    model: str = "unknown CPU"


def cpu_bf16_from_flags(
    flags: Iterable[str],
    capability: str,
    onednn_max_isa: str | None = None,
    force: str | None = None,
    model: str = "unknown CPU",
) -> CpuBf16:
    """Decide whether bf16 is native from the CPU flags and PyTorch's dispatch level (pure).

    Native needs a bf16 flag (`NATIVE_BF16_FLAGS`) *and* PyTorch and oneDNN allowed to use it:
    ``capability`` (`torch.backends.cpu.get_cpu_capability()`) at AVX512 or above, and
    ``onednn_max_isa`` unset or at a bf16-capable level. ``force`` ("0"/"1", from
    ``CODEFALCON_CPU_BF16``) overrides everything.

    >>> cpu_bf16_from_flags(["avx2", "amx_bf16"], "AVX512").native
    True
    >>> cpu_bf16_from_flags(["avx2", "amx_bf16"], "AVX2").reason
    'amx_bf16 present but PyTorch dispatches at AVX2'
    """
    if force is not None and force.strip() != "":
        if force.strip() not in ("0", "1"):
            raise ValueError(f"{FORCE_ENV} must be 0 or 1, got {force!r}")
        native = force.strip() == "1"
        return CpuBf16(native, f"forced by {FORCE_ENV}={force.strip()}", model)
    found = [flag for flag in NATIVE_BF16_FLAGS if flag in set(flags)]
    if not found:
        return CpuBf16(False, "no AVX512-BF16/AMX", model)
    if not capability.upper().startswith("AVX512"):
        return CpuBf16(False, f"{found[-1]} present but PyTorch dispatches at {capability}", model)
    if onednn_max_isa and not onednn_max_isa.upper().startswith(_ONEDNN_BF16_ISAS):
        return CpuBf16(False, f"{found[-1]} present but ONEDNN_MAX_CPU_ISA={onednn_max_isa}", model)
    return CpuBf16(True, " + ".join(found), model)


def read_cpuinfo(text: str) -> tuple[list[str], str]:
    """(flags, model name) of the first processor in a ``/proc/cpuinfo`` text."""
    flags: list[str] = []
    model = platform.processor() or "unknown CPU"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model in ("unknown CPU", platform.processor()):
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = value.split()
    return flags, model


@functools.cache
def probe_cpu_bf16() -> CpuBf16:
    """Probe this process's CPU once (see the module docstring) and log what it found."""
    environ: Mapping[str, str] = os.environ
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    flags, model = read_cpuinfo(text)
    result = cpu_bf16_from_flags(
        flags,
        torch.backends.cpu.get_cpu_capability(),
        environ.get("ONEDNN_MAX_CPU_ISA"),
        environ.get(FORCE_ENV),
        model,
    )
    state = "native: bf16_autocast auto = on" if result.native else "emulated: bf16_autocast auto = off"
    log.warning("CPU %s: bf16 %s (%s)", result.model, state, result.reason)
    return result


@dataclass(frozen=True)
class Bf16Decision:
    """Whether to autocast, and the warning to show (None when there is nothing to warn about)."""

    enabled: bool
    warning: str | None = None


def resolve_bf16_autocast(setting: Bf16Setting, device_type: str, cpu: CpuBf16) -> Bf16Decision:
    """Resolve a ``bf16_autocast`` setting for a model on ``device_type`` (pure).

    auto: on for CUDA, and on the CPU only where bf16 is native. true: on, with a warning when the
    CPU emulates bf16. false: off. Other device types (mps, meta) follow the setting, auto = off.

    >>> resolve_bf16_autocast("auto", "cpu", CpuBf16(False, "no AVX512-BF16/AMX")).enabled
    False
    >>> resolve_bf16_autocast("auto", "cuda", CpuBf16(False, "no AVX512-BF16/AMX")).enabled
    True
    """
    if setting is False:
        return Bf16Decision(False)
    if device_type == "cuda":
        return Bf16Decision(True)
    if device_type != "cpu":
        return Bf16Decision(setting is True)
    if setting == "auto":
        return Bf16Decision(cpu.native)
    if cpu.native:
        return Bf16Decision(True)
    return Bf16Decision(True, emulated_warning(cpu))


def emulated_warning(cpu: CpuBf16) -> str:
    """The warning for ``bf16_autocast: true`` on a CPU that emulates bf16."""
    return (
        f"bf16 autocast is emulated on this CPU ({cpu.model}: {cpu.reason}): several times slower "
        f"than fp32 ({EMULATED_COST}); set bf16_autocast: auto (or false) to train in fp32"
    )


_warned: set[str] = set()


def autocast_enabled(setting: Bf16Setting, device: torch.device | str) -> bool:
    """`resolve_bf16_autocast` for this machine (CPU probed once); each warning is logged once."""
    device_type = torch.device(device).type
    cpu = probe_cpu_bf16() if device_type == "cpu" else CpuBf16(False, "not probed")
    decision = resolve_bf16_autocast(setting, device_type, cpu)
    if decision.warning and decision.warning not in _warned:
        _warned.add(decision.warning)
        log.warning(decision.warning)
    return decision.enabled


def bf16_autocast(enabled: bool, device: torch.device | str) -> Any:
    """bfloat16 autocast on ``device``'s type; weights and optimiser stay float32. Autocast only
    affects ops on its own device type, so it must be the model's: a "cpu" autocast around a CUDA
    forward would silently do nothing. ``enabled`` is a resolved bool (`autocast_enabled`)."""
    if not isinstance(enabled, bool):
        raise TypeError(f"resolve bf16_autocast={enabled!r} with autocast_enabled() first")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def optimizer_step(optimizer: torch.optim.Optimizer, max_grad_norm: float) -> float:
    """Clip the gradients of the optimiser's parameters, step, clear; returns the pre-clip norm."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
