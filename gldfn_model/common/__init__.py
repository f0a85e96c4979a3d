"""Shared helpers with no dependency on PyTorch: atomic file output, hashing, the error base class."""
