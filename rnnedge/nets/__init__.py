"""PyTorch modules (imported only by train and export: they need torch)."""
