"""Prompt length against the text encoder's limit (CogVideoX: T5, 226 tokens including EOS).

With a local tokenizer (``tokenizer_path``: a tokenizer folder, or a CogVideoX model folder with a
``tokenizer/`` subfolder) tokens are counted exactly, special tokens included. Otherwise the
count is a conservative estimate, ``ceil(1.3 * words) + punctuation marks + 1``: T5's
SentencePiece averages ~1.3 pieces per English word, punctuation marks are usually pieces of their
own, and the 1 is the EOS token. Over the limit, the prompt is cut at a word boundary.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

log = logging.getLogger(__name__)

PUNCTUATION = re.compile(r"[^\w\s]")


def estimate_tokens(text: str) -> int:
    return math.ceil(1.3 * len(text.split())) + len(PUNCTUATION.findall(text)) + 1


class TokenCounter:
    """``count(text)`` and ``fit(text, limit)``; ``rule`` says which counting was used."""

    def __init__(self, tokenizer_path: str | None = None):
        self.tokenizer, self.rule = None, "estimate: ceil(1.3*words)+punctuation+1"
        if tokenizer_path:
            root = Path(str(tokenizer_path)).expanduser()
            folder = root / "tokenizer" if (root / "tokenizer").is_dir() else root
            if folder.is_dir():
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
                self.rule = f"tokenizer: {folder}"
            else:
                log.warning("tokenizer_path %s does not exist: prompt lengths are estimated", root)

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return estimate_tokens(text)
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def fit(self, text: str, limit: int) -> tuple[str, int, bool]:
        """(text or its longest word-boundary prefix within ``limit`` tokens, its count, truncated)."""
        count = self.count(text)
        if count <= limit:
            return text, count, False
        words = text.split()
        low, high = 0, len(words)  # invariant: words[:low] fits, words[:high + 1] does not
        while low < high:
            mid = (low + high + 1) // 2
            if self.count(" ".join(words[:mid])) <= limit:
                low = mid
            else:
                high = mid - 1
        cut = " ".join(words[:low]).rstrip(",;:-")
        return cut, self.count(cut), True
