from tests.simulators.platforms import platform_sim, platform_sim_server  # noqa: F401
