"""Old name of `notifications.delivery.bulk`, kept so code written against it still imports
the same module (not a copy)."""

import sys

from notifications.delivery import bulk as _moved

sys.modules[__name__] = _moved
