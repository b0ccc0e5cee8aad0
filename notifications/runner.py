"""Old name of `notifications.delivery.runner`, kept so code written against it still imports
the same module (not a copy)."""

import sys

from notifications.delivery import runner as _moved

sys.modules[__name__] = _moved
