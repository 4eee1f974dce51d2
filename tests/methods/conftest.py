"""Fixtures shared by the method tests."""

import pytest

from janus import experiment


@pytest.fixture
def built_methods(monkeypatch):
    """The methods `run_experiment` builds during a test, so tests can look inside them afterwards."""
    built = []
    original = experiment.build_method

    def build_and_keep(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(experiment, "build_method", build_and_keep)
    return built
