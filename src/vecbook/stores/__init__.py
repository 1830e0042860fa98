"""Vector store backends: ``base`` (the public API and the hooks), ``engine`` (shared parts), one subpackage per backend."""
