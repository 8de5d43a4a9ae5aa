"""Training: the per-frame CNN on stills, then the LSTM head on sequences of its embeddings."""
