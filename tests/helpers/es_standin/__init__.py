"""An Elasticsearch stand-in for tests: a real HTTP server on loopback that the official client talks to.

It answers the REST calls vecbook's EsVectorStore makes (and the raw-client
benchmark), checks each request against the shapes Elasticsearch documents
(unknown parameters, fields, queries or endpoints get ES-style 400 errors;
features it does not model get a loud ``standin_unsupported_exception``), and
evaluates mappings, bulk writes, refresh visibility, points in time,
search_after, bool/term/terms/range/exists queries, match (BM25) and kNN per ES's documented
semantics. See docs/backends/elasticsearch-verification.md for its scope::

    with EsStandin() as es:
        client = Elasticsearch(es.url)
        es.faults.fail_items(after=10)   # the 11th bulk item on fails with a 429
"""

from .errors import EsError
from .faults import Faults
from .server import EsStandin, RecordedCall

__all__ = ["EsStandin", "EsError", "Faults", "RecordedCall"]
