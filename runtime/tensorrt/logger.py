"""The process's one TensorRT logger.

TensorRT keeps the first logger a process hands it and routes every later builder's, parser's and runtime's
messages there, so a fresh logger per builder or runtime would look empty. Each TensorRT module (``tensorrt``,
``tensorrt_rtx``) gets one logger; it keeps the recent messages, numbered, so that a build or a run can quote what
TensorRT said while it ran (``mark`` / ``since``), and prints every message to stderr once ``set_verbose`` is on
(``gldfn-trt --verbose``).
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Any

KEPT_MESSAGES = 512  # bounded: a long-running process logs without end

_lock = threading.Lock()
_loggers: dict[str, Any] = {}
_verbose = False


def set_verbose(verbose: bool) -> None:
    """Print every TensorRT message (all severities) to stderr from now on, or only keep them."""
    global _verbose
    _verbose = verbose


def is_verbose() -> bool:
    return _verbose


def process_logger(trt: Any) -> Any:
    """The one logger of TensorRT module ``trt`` in this process (made on first use)."""
    with _lock:
        logger = _loggers.get(trt.__name__)
        if logger is None:
            logger = _loggers[trt.__name__] = _make_logger(trt)
        return logger


def _make_logger(trt: Any) -> Any:
    class ProcessLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self._recent: deque[tuple[int, str]] = deque(maxlen=KEPT_MESSAGES)
            self._count = 0
            self._lock = threading.Lock()

        def log(self, severity: Any, msg: str) -> None:
            text = f"[{severity.name}] {msg}"
            if _verbose:
                print(f"[TensorRT] {text}", file=sys.stderr, flush=True)
            if severity <= trt.ILogger.Severity.WARNING:
                with self._lock:
                    self._count += 1
                    self._recent.append((self._count, text))

        def mark(self) -> int:
            """A position; ``since(position)`` gives the warnings and errors logged after it."""
            with self._lock:
                return self._count

        def since(self, position: int) -> list[str]:
            with self._lock:
                return [text for number, text in self._recent if number > position]

        def recent(self, count: int) -> list[str]:
            with self._lock:
                return [text for _, text in list(self._recent)[-count:]]

    return ProcessLogger()
