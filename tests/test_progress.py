"""Tests for spectralmatch.progress: callbacks, cancellation, silence off-terminal, logging."""
from __future__ import annotations

import logging

import pytest

from spectralmatch import progress as progress_module
from spectralmatch.progress import Progress, configure_logging


def test_callback_receives_increasing_fractions_ending_at_one() -> None:
    calls = []
    p = Progress(4, "Global regression", callback=lambda f, m: calls.append((f, m)))
    for _ in range(4):
        p.update()
    p.close()
    fractions = [f for f, _ in calls]
    assert fractions == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(m == "Global regression" for _, m in calls)
    assert p.done == 4


def test_updates_beyond_total_are_capped_and_batches_count() -> None:
    fractions = []
    p = Progress(10, "x", callback=lambda f, m: fractions.append(f))
    p.update(3)
    p.update(9)
    assert fractions == [0.0, 0.3, 1.0]
    assert p.done == 10


def test_zero_total_reports_done() -> None:
    fractions = []
    Progress(0, "nothing", callback=lambda f, m: fractions.append(f))
    assert fractions == [1.0]


@pytest.mark.parametrize("answer", [False, 0])
def test_callback_returning_false_cancels(answer) -> None:
    calls = []

    def callback(fraction, message):
        calls.append(fraction)
        return answer if fraction >= 0.5 else True

    p = Progress(4, "Apply", callback=callback)
    p.update()
    with pytest.raises(KeyboardInterrupt, match="Apply"):
        p.update()
    assert calls == [0.0, 0.25, 0.5]


def test_callback_returning_none_or_true_continues() -> None:
    p = Progress(2, "a", callback=lambda f, m: None)
    p.update(2)
    p = Progress(2, "b", callback=lambda f, m: 1)
    p.update(2)
    assert p.done == 2


def test_no_output_when_stderr_is_not_a_terminal(capsys) -> None:
    with Progress(50, "Quiet step") as p:
        for _ in range(50):
            p.update()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_forced_bar_draws_on_stderr(capsys) -> None:
    with Progress(3, "Loud step", bar=True) as p:
        for _ in range(3):
            p.update()
    err = capsys.readouterr().err
    assert "Loud step" in err and "3/3" in err and err.endswith("\n")
    assert "#" * 30 in err


@pytest.fixture
def clean_logger(monkeypatch):
    """Restore the spectralmatch logger's level, handlers and flags after the test."""
    logger = logging.getLogger("spectralmatch")
    saved = (logger.level, list(logger.handlers), logger.propagate,
             progress_module._debug_set_here)
    logger.setLevel(logging.NOTSET)
    progress_module._debug_set_here = False
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]
    progress_module._debug_set_here = saved[3]


def test_configure_logging_levels(clean_logger) -> None:
    configure_logging(False)
    assert clean_logger.level == logging.INFO
    configure_logging(True)
    assert clean_logger.level == logging.DEBUG
    # A later run without debug_logs is not verbose any more.
    configure_logging(False)
    assert clean_logger.level == logging.INFO
    # A quieter level is raised to INFO (the "Start ..." lines are always shown).
    clean_logger.setLevel(logging.WARNING)
    configure_logging()
    assert clean_logger.level == logging.INFO


def test_configure_logging_keeps_an_application_debug_level(clean_logger) -> None:
    clean_logger.setLevel(logging.DEBUG)
    configure_logging(False)
    assert clean_logger.level == logging.DEBUG


def test_configure_logging_adds_one_stderr_handler_only_when_none_exists(clean_logger,
                                                                         monkeypatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    clean_logger.handlers[:] = []
    configure_logging(False)
    configure_logging(True)
    assert len(clean_logger.handlers) == 1
    assert isinstance(clean_logger.handlers[0], logging.StreamHandler)
    assert clean_logger.propagate is False


def test_configure_logging_leaves_application_handlers_alone(clean_logger, monkeypatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    clean_logger.handlers[:] = []
    configure_logging(False)
    assert clean_logger.handlers == []


def test_info_messages_reach_the_stderr_handler(clean_logger, monkeypatch, capsys) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    clean_logger.handlers[:] = []
    configure_logging(False)
    clean_logger.info("Start global_regression")
    clean_logger.debug("hidden detail")
    err = capsys.readouterr().err
    assert "Start global_regression" in err and "hidden detail" not in err
