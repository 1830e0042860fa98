"""Keyword (BM25) search over node contents, for backends without a full-text engine of their own.

``tokens.py`` is the one tokenizer (lowercase, Unicode word split); ``bm25.py`` a
BM25 index over tokenized texts (tantivy, k1=1.2, b=0.75, Lucene's IDF);
``tables.py`` keeps one index per NodeTable for memory and local, built on the
first keyword search and brought up to date with the rows written since before
each later one; ``scan.py`` one per workspace of any other store, built
from its contents. Elasticsearch uses its own engine (a ``match`` query).
"""
