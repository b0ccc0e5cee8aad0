"""Every table, imported so SQLModel.metadata is complete for Alembic and tests.

Each module in this package holds the tables of one area; importing the package imports
them all, so adding an area is adding a module.
"""

import pkgutil
from importlib import import_module

for _module in pkgutil.iter_modules(__path__):
    import_module(f"{__name__}.{_module.name}")
