"""Per-step metrics as JSONL (the record) and TensorBoard (the view).

Keys are namespaced (``loss/total``, ``reward/binary``, ``exec/seconds``). On resume from step
``s``, lines for steps after ``s`` (written after the checkpoint, before a kill) are dropped, so
the file holds each step exactly once: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only ``metrics.jsonl`` plus an optional TensorBoard writer.

    ``resume_step``: the step of the checkpoint being resumed (None for a fresh run, which
    starts a new file). ``writer`` False (ranks other than 0 of a multi-process run): log nothing.
    """

    def __init__(
        self,
        run_dir: str | Path,
        resume_step: int | None = None,
        tensorboard: bool = True,
        writer: bool = True,
    ) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = writer
        self._tb = None
        if not writer:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("", encoding="utf-8")
        else:
            _truncate_after(self.path, resume_step)
        self._tb = _tensorboard_writer(Path(run_dir) / "tb") if tensorboard else None

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.writer:
            return
        record = {"step": step, **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a metrics file, in order."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line from a kill mid-write
    return records


def _truncate_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    kept = [r for r in read_metrics(path) if int(r.get("step", 0)) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars as Python numbers, so every record is plain JSON."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def _tensorboard_writer(folder: Path) -> Any:
    """A SummaryWriter if tensorboard is installed; training never fails for want of one."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))
