"""One handler per Kafka API. Importing this package imports every module in it, and so registers
every handler in HANDLERS: a new API is its declaration, its handler module and its test."""

import importlib
import pkgutil

from broker.handlers.base import HANDLERS, Api

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["HANDLERS", "Api"]
