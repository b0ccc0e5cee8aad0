"""Old name of `notifications.delivery.quiet`, kept so code written against it still imports
the same module (not a copy)."""

import sys

from notifications.delivery import quiet as _moved

sys.modules[__name__] = _moved
