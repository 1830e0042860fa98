"""Adapters between vecbook and other frameworks, one module per framework.

Each module needs its own extra and is imported only when asked for, so
``import vecbook`` never pulls a framework in:

- :mod:`vecbook.integrations.langchain` (``pip install 'vecbook[langchain]'``): a LangChain
  ``VectorStore`` over any vecbook store, and embedding models usable both ways.
"""
