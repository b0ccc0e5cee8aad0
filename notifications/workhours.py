"""Old name of `notifications.outbox.workhours`, kept so code written against it still imports
the same module (not a copy)."""

import sys

from notifications.outbox import workhours as _moved

sys.modules[__name__] = _moved
