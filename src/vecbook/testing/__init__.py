"""Test doubles for code that uses vecbook: an OpenAI-style embeddings server on localhost.

``EmbeddingServer`` answers ``POST /v1/embeddings`` like OpenAI (float or base64)
with deterministic vectors, records what it was sent, and can inject latency and
faults (429 with Retry-After, 5xx, timeouts, malformed replies) — for testing a
pipeline without an API key or a network.
"""

from .embedding_server import EmbeddingServer, Fault, RecordedRequest

__all__ = ["EmbeddingServer", "Fault", "RecordedRequest"]
