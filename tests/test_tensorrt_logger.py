"""The process's one TensorRT logger: shared by every builder and runtime, bounded, quoting per build, verbose."""
from __future__ import annotations

import pytest

from gldfn_runtime.tensorrt import logger as logger_module
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt


@pytest.fixture
def trt():
    try:
        return load_tensorrt().module
    except TensorRTUnavailable as error:
        pytest.skip(f"no TensorRT or TensorRT-RTX installed: {error}")


def test_one_logger_per_tensorrt_module(trt) -> None:
    assert logger_module.process_logger(trt) is logger_module.process_logger(trt)


def test_messages_since_a_mark_and_bounded(trt) -> None:
    logger = logger_module.process_logger(trt)
    start = logger.mark()
    logger.log(trt.ILogger.Severity.WARNING, "first")
    logger.log(trt.ILogger.Severity.INFO, "info is not kept")
    assert logger.since(start) == ["[WARNING] first"]
    for index in range(logger_module.KEPT_MESSAGES + 10):
        logger.log(trt.ILogger.Severity.ERROR, f"e{index}")
    assert len(logger.since(start)) == logger_module.KEPT_MESSAGES
    assert logger.recent(1) == [f"[ERROR] e{logger_module.KEPT_MESSAGES + 9}"]


def test_verbose_prints_every_severity(trt, capsys) -> None:
    logger = logger_module.process_logger(trt)
    logger_module.set_verbose(True)
    try:
        logger.log(trt.ILogger.Severity.VERBOSE, "a verbose line")
    finally:
        logger_module.set_verbose(False)
    logger.log(trt.ILogger.Severity.VERBOSE, "a quiet line")
    err = capsys.readouterr().err
    assert "a verbose line" in err and "a quiet line" not in err
