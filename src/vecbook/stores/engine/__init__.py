"""The engine the backends share: input validation and batches, scores, the in-RAM table, the ANN index."""
