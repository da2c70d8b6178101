"""One error hierarchy: every exception class of the project derives from ShiptrackError,
and shiptrack/errors.py's docstring names each of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import shiptrack.errors
from shiptrack.errors import InputError, ShiptrackError

PACKAGES = ("shiptrack", "api", "ingest", "simulator")


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
        for name in names:
            if name.endswith("__main__"):
                continue
            module = importlib.import_module(name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, BaseException) and value.__module__ == name:
                    found[f"{name}.{value.__qualname__}"] = value
    return found


def test_every_error_class_is_a_shiptrack_error_and_is_documented() -> None:
    classes = _error_classes()
    assert len(classes) > 20
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, ShiptrackError))
    assert outside == []
    doc = shiptrack.errors.__doc__ or ""
    undocumented = sorted(name for name in classes
                          if name.removeprefix("shiptrack.errors.") not in doc)
    assert undocumented == []


def test_input_errors_stay_value_errors() -> None:
    from shiptrack.geofences import GeofenceError
    from shiptrack.shipments import ShipmentError

    for cls in (GeofenceError, ShipmentError):
        assert issubclass(cls, InputError) and issubclass(cls, ValueError)
