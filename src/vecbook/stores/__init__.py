"""Vector store backends."""
