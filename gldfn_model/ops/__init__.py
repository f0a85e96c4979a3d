"""The local dynamic filter op: its machine-readable contract, the PyTorch custom op and its CUDA forward."""
