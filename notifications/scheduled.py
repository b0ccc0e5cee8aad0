"""Old name of `notifications.delivery.scheduled`, kept so code written against it still imports
the same module (not a copy)."""

import sys

from notifications.delivery import scheduled as _moved

sys.modules[__name__] = _moved
