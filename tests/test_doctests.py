"""Every module's docstring examples, run as their installed names (driftwarden.*) import them."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import driftwarden.alerts
import driftwarden.daemon
import driftwarden.detectors

MODULES = sorted(
    name
    for package in (driftwarden.daemon, driftwarden.detectors, driftwarden.alerts)
    for _, name, _ in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
)


def test_every_package_is_walked() -> None:
    assert {"driftwarden.daemon.clock", "driftwarden.detectors.traffic", "driftwarden.alerts.reports.bundle"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    failed, _ = doctest.testmod(module, report=True)
    assert failed == 0, f"{failed} doctest example(s) of {name} failed (the output above shows which)"
