"""Shared pytest settings: a run that collects no test fails instead of exiting with status 5."""
import pytest


def pytest_sessionfinish(session, exitstatus):
    if session.testscollected == 0 and exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print('\nno tests were collected: the test suite is missing, which is an error')
