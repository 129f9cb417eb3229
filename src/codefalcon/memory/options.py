"""The retrieval rules as config fields, shared by `codefalcon train` (falcon), `sft`
(memory_context) and `solve` (falcon) so the three read them the same way."""

from __future__ import annotations

from pydantic import Field

from codefalcon.configs import StrictModel
from codefalcon.memory.record import ExampleFilter


class ExampleFilterOptions(StrictModel):
    """Config fields of an `ExampleFilter`; a section inherits them."""

    max_similarity: float | None = Field(default=None, ge=-1, le=1)
    """Leave out solved neighbours whose cosine to the task is above this (near-copies the model
    would copy verbatim, constants and all); None keeps them."""
    max_example_similarity: float | None = Field(default=None, ge=-1, le=1)
    """Leave out a neighbour whose cosine to an example already chosen is above this, so the
    examples differ from each other; None keeps them."""

    @property
    def example_filter(self) -> ExampleFilter:
        return ExampleFilter(self.max_similarity, self.max_example_similarity)
