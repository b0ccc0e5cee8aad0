"""Serve, migrate, load the demo hospital."""

from __future__ import annotations

import click

from api.cli.context import build_services, configure_logging, db_settings, main, open_services, run
from api.settings import load_settings


@main.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.db import make_engine
    from api.domain.approvals import publish_definitions
    from api.migrate import upgrade

    settings = db_settings()

    async def go() -> list[str]:
        engine = make_engine(settings)
        try:
            await upgrade(engine)
            # The process definitions in the repository are part of a release: publishing
            # is idempotent, and a changed definition must carry a new version.
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                rows = await publish_definitions(session)
            return sorted(f"{r.key}.v{r.version}" for r in rows)
        finally:
            await engine.dispose()

    published = run(go())
    click.echo("database is up to date / 数据库已是最新结构")
    click.echo(f"approval definitions published / 审批流程定义: {', '.join(published)}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Load the demo hospital (running it twice changes nothing)."""
    from api.demo import seed_demo as load

    services = build_services(db_settings(schema=True))

    async def go() -> None:
        async with open_services(services):
            async with services.db.transaction() as session:
                summary = await load(session, services)
        for key, value in summary.items():
            click.echo(f"{key}: {value}")

    run(go())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", default=1, show_default=True, type=int, help="API processes (fleet: one per core)"
)
@click.option(
    "--keep-alive",
    default=75,
    show_default=True,
    type=int,
    help="seconds an idle client connection stays open; longer than the load balancer's idle timeout",
)
def serve(host: str, port: int, workers: int, keep_alive: int) -> None:
    """Migrate, then serve the API, the PWA and the bot callbacks."""
    import uvicorn

    configure_logging(load_settings())
    ctx = click.get_current_context()
    ctx.invoke(migrate)
    # Keep-alive: a server that closes an idle connection just as the balancer (or a PAD)
    # sends on it makes that request fail. Closing later than the client (uvicorn's default
    # is 5 s, as short as many clients' own) leaves the closing to the client.
    uvicorn.run(
        "api.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        timeout_keep_alive=keep_alive,
    )
