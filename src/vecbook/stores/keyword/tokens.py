"""The tokenizer every vecbook-side keyword index uses (memory, local, Chroma, Qdrant).

Lowercase, then the runs of Unicode word characters (letters, digits, marks and
``_``, as Python's ``\\w``); no stopwords, no stemming, so a query word matches
exactly that word in any case. Tokens longer than 255 characters are cut into
255-character pieces, as Elasticsearch's standard tokenizer does.
"""

from __future__ import annotations

import re

__all__ = ["tokenize", "MAX_TOKEN"]

MAX_TOKEN = 255
_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """The terms of ``text``, in order, repeats kept."""
    words = _WORD.findall(text.lower())
    if any(len(w) > MAX_TOKEN for w in words):
        words = [w[i : i + MAX_TOKEN] for w in words for i in range(0, len(w), MAX_TOKEN)]
    return words
