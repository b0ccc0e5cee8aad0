"""Old name of `notifications.delivery.channels` (and its modules), kept so code written
against it still imports the same modules (not copies)."""

import sys
from importlib import import_module

from notifications.delivery import channels as _moved

for _name in ("oa_templates", "platforms", "webhook", "webpush"):
    sys.modules[f"{__name__}.{_name}"] = import_module(f"{_moved.__name__}.{_name}")
sys.modules[__name__] = _moved
