"""Full text: the ``standard`` analyzer and the ``match`` query, scored by BM25 as Elasticsearch does.

Analyzer: Unicode word segmentation (UAX #29, approximated: runs of letters,
digits and ``_``, joined across ``'`` ``’`` ``.`` between letters or digits, ``:``
between letters, ``,`` ``;`` between digits; each CJK ideograph a token of its
own), lowercased, tokens longer than 255 characters split every 255.

Scoring: Lucene's BM25 (Elasticsearch's default similarity, k1=1.2, b=0.75):
``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, ``N`` the documents with a token in
the field, ``avgdl`` their mean length, and ``dl`` the length as stored in the
one-byte norm (SmallFloat.intToByte4, lossy above 24 tokens); a ``match`` sums
one clause per query token (repeats included). Statistics come from the live
documents of the one shard (as Elasticsearch's after a force-merge: a real
index counts deleted documents until their segments merge).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np

from .errors import EsError, check_keys, parsing, unsupported
from .indices import Snapshot
from .mapping import Mapping

K1, B = 1.2, 0.75
MAX_TOKEN = 255
_IDEOGRAPH = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(
    rf"[{_IDEOGRAPH}]|(?:(?![{_IDEOGRAPH}])\w)+(?:(?:(?<=[^\W\d_])[.'’:](?=[^\W\d_])|(?<=\d)[.,;'’](?=\d))(?:(?![{_IDEOGRAPH}])\w)+)*"
)


def analyze(text: str) -> list[str]:
    """The standard analyzer's tokens of ``text``."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    if any(len(t) > MAX_TOKEN for t in tokens):
        tokens = [t[i : i + MAX_TOKEN] for t in tokens for i in range(0, len(t), MAX_TOKEN)]
    return tokens


def _int4_to_long(i: int) -> int:
    bits, shift = i & 0x07, (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


def _long_to_int4(i: int) -> int:
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


_FREE = 255 - _long_to_int4(2**31 - 1)  # 24 lengths stored exactly


def stored_length(n: int) -> int:
    """A field length after Lucene's one-byte norm (intToByte4, then byte4ToInt)."""
    if n < _FREE:
        return n
    return _FREE + _int4_to_long(_long_to_int4(n - _FREE))


class FieldStats:
    """Token counts per document of one text field, from one snapshot."""

    def __init__(self, snap: Snapshot, path: str):
        self.counts: list[Counter] = []
        lengths = []
        for doc in snap.docs:
            tokens = [t for value in doc.values.get(path, []) for t in analyze(value)]
            self.counts.append(Counter(tokens))
            lengths.append(len(tokens))
        exact = np.asarray(lengths, dtype=np.float64)
        self.with_field = int((exact > 0).sum())
        self.avgdl = float(exact.sum() / self.with_field) if self.with_field else 1.0
        self.norm = K1 * (1 - B + B * np.asarray([stored_length(n) for n in lengths], dtype=np.float64) / self.avgdl)

    def term_scores(self, term: str) -> np.ndarray:
        tf = np.asarray([c.get(term, 0) for c in self.counts], dtype=np.float64)
        df = int((tf > 0).sum())
        if not df:
            return np.zeros(len(tf), dtype=np.float64)
        idf = math.log(1 + (self.with_field - df + 0.5) / (df + 0.5))
        return np.where(tf > 0, idf * tf / (tf + self.norm), 0.0)


def field_stats(snap: Snapshot, path: str) -> FieldStats:
    cache = snap.derived.setdefault("text", {})
    if path not in cache:
        cache[path] = FieldStats(snap, path)
    return cache[path]


def match(body: Any, mapping: Mapping) -> Any:
    """The ``match`` query on a text field: ``operator`` or/and, ``boost``; BM25 scores (see the module)."""
    if not isinstance(body, dict) or len(body) != 1:
        raise parsing("[match] query doesn't support multiple fields" if isinstance(body, dict) and body else "[match] query malformed, no start_object after query name")
    ((path, raw),) = body.items()
    options = raw if isinstance(raw, dict) else {"query": raw}
    check_keys(options, {"query", "operator", "boost", "_name", "zero_terms_query", "analyzer", "fuzziness", "minimum_should_match", "lenient", "prefix_length", "max_expansions", "auto_generate_synonyms_phrase_query", "fuzzy_transpositions"}, "match", parsing)
    for key in ("analyzer", "fuzziness", "minimum_should_match"):
        if key in options:
            raise unsupported(f"match option [{key}]")
    if "query" not in options:
        raise parsing("[match] requires query value")
    operator = str(options.get("operator", "or")).lower()
    if operator not in ("or", "and"):
        raise EsError(400, "illegal_argument_exception", f"No enum constant org.elasticsearch.index.search.MatchQueryParser.Type.{operator.upper()}")
    if options.get("zero_terms_query", "none") not in ("none", "all"):
        raise parsing("Unsupported zero_terms_query value")
    boost = float(options.get("boost", 1.0))
    spec = mapping.fields.get(path)
    if spec is not None and spec.type != "text":
        raise unsupported(f"[match] queries on [{spec.type}] fields")
    if spec is not None and not spec.indexed:
        raise EsError(400, "query_shard_exception", f"failed to create query: Cannot search on field [{path}] since it is not indexed.")
    terms = analyze(str(options["query"]))
    everything = not terms and options.get("zero_terms_query") == "all"

    def scores(snap: Snapshot) -> np.ndarray:
        if spec is None or not terms or not len(snap):
            return np.full(len(snap), 1.0 if everything else 0.0, dtype=np.float32)
        stats = field_stats(snap, path)
        total = np.zeros(len(snap), dtype=np.float64)
        present = np.ones(len(snap), dtype=bool)
        for term in terms:
            part = stats.term_scores(term)
            total += part
            present &= part > 0
        if operator == "and":
            total[~present] = 0.0
        return (boost * total).astype(np.float32)

    def run(snap: Snapshot) -> np.ndarray:
        return scores(snap) > 0

    run.scores = scores
    return run
