"""kafka-python 3.x's message classes, by Kafka message name (for the cross-check tests).

``JSON_CLASSES[name]``: the JSON-driven class (``cls[version]``, ``cls.decode(data, version=...)``)
covering ``cls.valid_versions``; ``OLD_CLASSES[(name, version)]``: the hand-written class of one
older version (``SCHEMA``, ``encode()``).
"""

from __future__ import annotations

import importlib
import pkgutil

import kafka.protocol.old as kafka_old
from kafka.protocol import admin, consumer, metadata, producer, sasl  # noqa: F401 - importing registers them
from kafka.protocol.api_message import ApiMessage


def _subclasses(cls: type):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _old_classes() -> dict[tuple[str, int], type]:
    classes = {}
    for module_info in pkgutil.iter_modules(kafka_old.__path__):
        module = importlib.import_module(f"{kafka_old.__name__}.{module_info.name}")
        for name, value in vars(module).items():
            if isinstance(value, list) and value and all(hasattr(c, "SCHEMA") for c in value):
                for cls in value:
                    classes[(name, cls.API_VERSION)] = cls
    return classes


JSON_CLASSES: dict[str, type] = {cls.name: cls for cls in _subclasses(ApiMessage) if cls._class_version is None}
OLD_CLASSES = _old_classes()


def json_class(name: str, version: int) -> type | None:
    """The JSON-driven class of message ``name`` if it covers ``version``."""
    cls = JSON_CLASSES.get(name)
    if cls is not None and cls.valid_versions[0] <= version <= cls.valid_versions[1]:
        return cls
    return None
