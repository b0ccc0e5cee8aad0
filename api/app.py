"""create_app(settings) -> Starlette: GraphQL, health, metrics, bot callbacks and the PWA."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from strawberry.asgi import GraphQL

from api import periodic
from api.assembly import install_domain
from api.attachments import attachment_routes
from api.auth import authenticate
from api.graphql.context import Context
from api.graphql.schema import schema
from api.http import RequestMiddleware
from api.http_limits import hardening_middleware
from api.privilege_http import privilege_check_routes
from api.services import Services
from api.settings import Settings, load_settings
from bots import routes as bot_routes
from bots.dingtalk import warn_card_setup
from integrations.fhir_http import fhir_routes
from notifications.delivery.runtime import start_delivery
from notifications.http import notification_routes
from sync.attachments import routes as sync_attachment_routes

log = logging.getLogger("bedside.app")

PWA_DIST = Path(__file__).resolve().parent.parent / "pwa" / "dist"


class BedsideGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if not services.settings.is_production else None,
            allow_queries_via_get=False,
        )
        self.services = services

    async def process_result(self, request: Request, result: Any) -> Any:  # type: ignore[override]
        # --- hardening: no unmasked error leaves the server, whatever path raised it ---
        from api.graphql.errors import mask_escaped_errors, strip_suggestions

        result.errors = mask_escaped_errors(result.errors)
        if self.services.settings.is_production and result.errors:
            # "Did you mean 'patientSearch'?" maps the schema for anyone, introspection off
            # or not: production names no field, type or argument it was not asked for.
            for error in result.errors:
                error.message = strip_suggestions(error.message)
        # --- end hardening ---
        return await super().process_result(request, result)

    async def get_context(self, request: Request, response: Any) -> Context:  # type: ignore[override]
        actor, auth_error = await authenticate(self.services, request)
        return Context(
            request=request,
            services=self.services,
            actor=actor,
            auth_error=auth_error,
            response=response,
        )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    healthy = True
    try:
        async with services.db.session() as session:
            await session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
        healthy = False
    if services.settings.redis_url:
        try:
            from redis.asyncio import Redis

            client = Redis.from_url(
                services.settings.redis_url, socket_connect_timeout=1, socket_timeout=1
            )
            try:
                await client.ping()
            finally:
                await client.aclose()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
            healthy = False
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


LOOPBACK = ("127.0.0.1", "::1", "localhost")


async def metrics(request: Request) -> Response:
    """Prometheus. With BEDSIDE_METRICS_TOKEN set, only `Authorization: Bearer <token>`
    reads it; unset, only a caller on this host (loopback) does."""
    settings: Settings = request.app.state.services.settings
    if settings.metrics_token:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        allowed = hmac.compare_digest(given.encode(), settings.metrics_token.encode())
    else:
        allowed = request.client is not None and request.client.host in LOOPBACK
    if not allowed:
        return JSONResponse(
            {"error": {"code": "FORBIDDEN", "message": "无权查看 / metrics need a token"}},
            status_code=403,
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


PLACEHOLDER_PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>Bedside</title>
<body><h1>Bedside 床旁</h1><p>前端尚未构建：运行 <code>make run</code>。/ The PWA is not built yet: run <code>make run</code>.</p>
<p><a href="/graphql">GraphQL</a></p></body></html>"""


def pwa_routes() -> list[Any]:
    if not (PWA_DIST / "index.html").exists():
        return [Route("/", lambda request: HTMLResponse(PLACEHOLDER_PAGE))]

    async def spa_fallback(request: Request) -> Response:
        # Client-side routes (/tasks/12) get the app shell; real files are served as is.
        candidate = (PWA_DIST / request.path_params["path"]).resolve()
        if candidate.is_file() and PWA_DIST in candidate.parents:
            # The service worker and the manifest must be revalidated, or a new version
            # of the app would wait behind the browser's HTTP cache.
            revalidate = candidate.name in ("sw.js", "manifest.webmanifest", "index.html")
            return FileResponse(
                candidate, headers={"cache-control": "no-cache"} if revalidate else None
            )
        return FileResponse(PWA_DIST / "index.html", headers={"cache-control": "no-cache"})

    return [
        Mount("/assets", app=hashed_assets(PWA_DIST / "assets"), name="assets"),
        Route("/{path:path}", spa_fallback),
    ]


class _ImmutableStaticFiles(StaticFiles):
    """Vite names every asset by its content hash: a name never changes meaning, so the
    browser may keep it for a year without asking again."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        if response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        return response


def hashed_assets(directory: Path) -> ASGIApp:
    """The app's scripts and styles, gzipped on the wire (about a third of their size on
    a slow ward Wi-Fi). Only these static files are compressed, never API responses, so
    nothing secret is ever compressed beside text an attacker chose."""
    return GZipMiddleware(
        _ImmutableStaticFiles(directory=directory, check_dir=False), minimum_size=1024
    )


def create_app(
    settings: Settings | None = None, services: Services | None = None, *, warm_up: bool = False
) -> Starlette:
    """`warm_up` (the served app): start helper processes at startup rather than in the
    first request that needs one."""
    settings = settings or (services.settings if services else load_settings())
    install_domain()
    services = services or Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Deadlines, no-shows, the slot window and card catch-up run with each sweep of
        # the outbox: in a worker with Redis, else in this process.
        periodic.install(services)
        warn_card_setup(services)  # an incomplete DingTalk card setup, named once at start
        delivery = await start_delivery(services)
        warming = None
        if warm_up:
            from api.domain.surgery.notice import warm_render_pool

            warming = asyncio.create_task(
                warm_render_pool()
            )  # in the background: serving starts now
        try:
            yield
        finally:
            if warming is not None and not warming.done():
                warming.cancel()
            await delivery.stop()
            await services.db.dispose()
            if warm_up:
                from api.domain.surgery.notice import stop_render_pool

                await asyncio.to_thread(stop_render_pool)

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/graphql", BedsideGraphQL(services), methods=["GET", "POST"]),
        *bot_routes(),  # DingTalk / WeCom callbacks, Official Account, identity binding
        *attachment_routes(),  # photos and consent signatures
        *sync_attachment_routes(),  # resumable upload by content hash for PADs
        *fhir_routes(services),  # FHIR R4 export
        *notification_routes(),  # the link in every message marks the notice read
        *privilege_check_routes(services),  # 手麻 / HIS ask "may X perform Y at T"
        *pwa_routes(),  # last: its catch-all serves the app shell
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                RequestMiddleware,
                https=settings.public_url.startswith("https://"),
                frame_ancestors=tuple(settings.frame_ancestors),
            ),
            *hardening_middleware(settings),  # CORS for the PWA's origin, request body limit
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
