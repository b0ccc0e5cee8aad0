"""The ASGI application for uvicorn workers: settings come from the environment."""

from api.app import create_app
from api.logs import configure_logging
from api.settings import load_settings

_settings = load_settings()
configure_logging(_settings.log_level, _settings.log_json)
app = create_app(_settings, warm_up=True)
