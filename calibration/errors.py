"""The one error type of the calibration package: bad input or a result that failed its checks."""
from __future__ import annotations

from gldfn_model.common.errors import GldfnError


class CalibrationError(GldfnError, ValueError):
    """The input cannot be calibrated as asked, or the quantized model failed its checks; the message says what
    to do."""
