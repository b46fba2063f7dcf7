"""Training (needs torch): data batching, the fit loop, atomic resumable checkpoints."""
