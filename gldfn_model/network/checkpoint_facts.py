"""What callers need to know of checkpoints without loading PyTorch: the config whose weights ship, and the error
type. ``checkpoint`` (which needs torch) re-exports both."""
from __future__ import annotations

from gldfn_model.common.errors import GldfnError

# The config whose trained weights the package ships; commands default to it when no checkpoint is given.
SHIPPED_CONFIG = "tiny"


class CheckpointError(GldfnError, ValueError):
    """A checkpoint is missing, unreadable, or does not match what was asked for."""
