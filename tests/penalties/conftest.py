from tests.notifications.conftest import notify_services, redis_url, sink  # noqa: F401
from tests.simulators.platforms import platform_sim, platform_sim_server  # noqa: F401
