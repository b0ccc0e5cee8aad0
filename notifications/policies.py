"""Old name of `notifications.outbox.policies`, kept so code written against it still imports
the same module (not a copy)."""

import sys

from notifications.outbox import policies as _moved

sys.modules[__name__] = _moved
