"""The `bedside` command."""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

import click

from api.domain import import_all_domain_modules
from api.settings import load_settings


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@click.group()
def main() -> None:
    """Bedside 床旁: surgery approvals, bedside treatments, bookings and notices."""


@main.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.db import make_engine
    from api.domain.approvals import publish_definitions
    from api.migrate import upgrade

    settings = load_settings()

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

    published = _run(go())
    click.echo("database is up to date / 数据库已是最新结构")
    click.echo(f"approval definitions published / 审批流程定义: {', '.join(published)}")


@main.command("seed-demo")
def seed_demo() -> None:
    """Load the demo hospital (running it twice changes nothing)."""
    from api.demo import seed_demo as load
    from api.services import Services

    services = Services.build(load_settings())

    async def go() -> None:
        try:
            async with services.db.transaction() as session:
                summary = await load(session, services)
        finally:
            await services.db.dispose()
        for key, value in summary.items():
            click.echo(f"{key}: {value}")

    _run(go())


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

    from api.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
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


@main.group()
def audit() -> None:
    """The hash-chained history."""


@audit.command("verify")
def audit_verify() -> None:
    """Check every hash chain; exit 1 naming the first broken event."""
    # Domain modules register the hash chains that must exist (one per approval …).
    import_all_domain_modules()
    from api.audit import verify_chains
    from api.db import Database

    settings = load_settings()

    async def go() -> list:  # type: ignore[type-arg]
        db = Database(settings)
        try:
            async with db.session() as session:
                return await verify_chains(session)
        finally:
            await db.dispose()

    breaks = _run(go())
    if breaks:
        click.echo(f"BROKEN: {breaks[0]}", err=True)
        for extra in breaks[1:]:
            click.echo(f"also broken: {extra}", err=True)
        sys.exit(1)
    click.echo("all hash chains intact / 所有哈希链完整")


# --- notifications
@main.command()
def worker() -> None:
    """arq worker: notifications, reminders and scheduled jobs (needs BEDSIDE_REDIS_URL)."""
    import signal

    # A SIGTERM while the worker is still starting (imports, connecting) is a clean stop
    # too: arq installs its own handler only once it runs, and before that the default
    # action would end the process with -15 (a supervisor reads that as a crash).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from api import periodic
    from api.logs import configure_logging
    from notifications.worker import run_worker

    settings = load_settings()
    if not settings.redis_url:
        click.echo(
            "BEDSIDE_REDIS_URL is not set; `bedside serve` delivers in process / 未配置 Redis",
            err=True,
        )
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_json)
    _run(run_worker(settings, prepare=periodic.install))


# --- end notifications


@main.command("vapid-keys")
def vapid_keys() -> None:
    """Print a new VAPID key pair for web push."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    click.echo(f"BEDSIDE_VAPID_PRIVATE_KEY={b64(private)}")
    click.echo(f"# public key (applicationServerKey): {b64(public)}")


# --- HL7 (HIS integration) -------------------------------------------------------------
@main.group()
def hl7() -> None:
    """HL7 v2 over MLLP with the hospital information system (HIS)."""


@hl7.command("listen")
@click.option("--host", default=None, help="default BEDSIDE_HL7_HOST (127.0.0.1)")
@click.option("--port", default=None, type=int, help="default BEDSIDE_HL7_PORT (2575)")
def hl7_listen(host: str | None, port: int | None) -> None:
    """MLLP listener for HIS messages; also sends our appointments to the HIS."""
    from api.logs import configure_logging
    from api.services import Services
    from integrations.hl7.config import HL7Config
    from integrations.hl7.listener import run_listener

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    config = HL7Config.load()
    services = Services.build(settings)
    click.echo(
        f"HL7 MLLP listening on {host or config.settings.host}:{port or config.settings.port} / HL7 监听中"
    )

    async def go() -> None:
        try:
            await run_listener(services, config, host=host, port=port)
        finally:
            await services.db.dispose()

    try:
        _run(go())
    except KeyboardInterrupt:
        pass


# --- end HL7 ---------------------------------------------------------------------------


# --- treatments: the periodic sweep (cron or the worker) ---
@main.group()
def treatments() -> None:
    """Treatment management jobs."""


@treatments.command("sweep")
@click.option("--days", default=14, show_default=True, help="rolling window of slots")
def treatments_sweep(days: int) -> None:
    """Generate the slots of the rolling window and mark no-shows (safe to repeat)."""
    from datetime import datetime

    from api.domain.treatments.appointments import mark_no_shows
    from api.domain.treatments.schedules import generate_slots
    from api.services import Services

    settings = load_settings()
    services = Services.build(settings)

    async def go() -> tuple[int, int]:
        try:
            async with services.db.transaction() as session:
                created = await generate_slots(
                    session, start=datetime.now(settings.tz).date(), days=days, tz=settings.tz
                )
                marked = await mark_no_shows(session)
            return created, len(marked)
        finally:
            await services.db.dispose()

    created, marked = _run(go())
    click.echo(
        f"slots created: {created}; no-shows marked: {marked} / 新增时段 {created}，标记爽约 {marked}"
    )


# --- end treatments ---
# --- bots: DingTalk Stream mode, card sweep, Official Account menu ---------------------
@main.command("dingtalk-stream")
def dingtalk_stream_command() -> None:
    """Receive DingTalk card taps over Stream mode (for hospitals with no public URL)."""
    from api.logs import configure_logging
    from api.services import Services
    from bots import dingtalk_stream

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    services = Services.build(settings)
    _run(dingtalk_stream.run(services))


@main.group()
def dingtalk() -> None:
    """DingTalk: the approval card's callback (HTTP mode)."""


@dingtalk.command("register-card-callback")
@click.option(
    "--url", default=None, help="default BEDSIDE_PUBLIC_URL + /bots/dingtalk/card-callback"
)
@click.option("--force", is_flag=True, help="replace a registration that points elsewhere")
def dingtalk_register_card_callback(url: str | None, force: bool) -> None:
    """Register the card callback URL for BEDSIDE_DINGTALK_CARD_CALLBACK_ROUTE_KEY, signed
    with BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET (注册卡片回调地址; HTTP mode only)."""
    from api.services import Services
    from bots.dingtalk import register_card_callback
    from integrations.platforms import PlatformError, get_platforms

    services = Services.build(load_settings())

    async def go() -> tuple[bool, dict]:  # type: ignore[type-arg]
        try:
            return await register_card_callback(services, callback_url=url, force=force)
        finally:
            await get_platforms(services).aclose()
            await services.db.dispose()

    try:
        done, record = _run(go())
    except PlatformError as exc:
        click.echo(f"注册失败 / registration failed: {exc}", err=True)
        sys.exit(1)
    if not done:
        click.echo(
            f"路由 {record['callbackRouteKey']} 已指向 {record['callbackUrl']}；确认后加 --force 覆盖 / "
            f"route key already points to {record['callbackUrl']}: run again with --force to replace it",
            err=True,
        )
        sys.exit(3)
    click.echo(f"已注册 / registered: {record['callbackRouteKey']} -> {record['callbackUrl']}")
    if services.settings.dingtalk_use_stream:
        click.echo(
            "注意：BEDSIDE_DINGTALK_USE_STREAM 仍为 true，卡片仍走 Stream 模式 / note: cards use "
            "Stream mode until BEDSIDE_DINGTALK_USE_STREAM=false",
            err=True,
        )


@main.group()
def bots() -> None:
    """DingTalk / WeCom cards and the Official Account."""


@bots.command("sweep")
def bots_sweep() -> None:
    """Decide stored taps left undecided, send and update cards, prune old nonces."""
    from api.services import Services
    from bots.sweep import sweep

    services = Services.build(load_settings())

    async def go() -> dict[str, int]:
        try:
            return await sweep(services)
        finally:
            await services.db.dispose()

    for key, value in _run(go()).items():
        click.echo(f"{key}: {value}")


@bots.command("work")
def bots_work() -> None:
    """Decide stored card taps as they arrive (with BEDSIDE_BOTS_DECIDE_IN_PROCESS=false)."""
    from api.logs import configure_logging
    from api.services import Services
    from bots import inbox

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    _run(inbox.work(Services.build(settings)))


@bots.command("oa-menu")
def bots_oa_menu() -> None:
    """Publish the Official Account menu (预约治疗 / 我的预约 / 随访)."""
    from api.services import Services
    from bots.wechat_oa import publish_menu

    services = Services.build(load_settings())
    _run(publish_menu(services))
    click.echo("menu published / 菜单已发布")


# --- end bots --------------------------------------------------------------------------


# --- hardening: key rotation and backups ---
@main.command("rotate-keys")
@click.option("--batch-size", default=500, show_default=True, type=int)
def rotate_keys(batch_size: int) -> None:
    """Re-encrypt patient identifiers (and lookup hashes) under BEDSIDE_SECRET_KEY.

    Set the old key(s) in BEDSIDE_PREVIOUS_SECRET_KEYS first; afterwards they can go.
    """
    from api.crypto import FieldCipher
    from api.db import Database
    from api.key_rotation import rotate_patient_identifiers

    settings = load_settings()
    if not settings.previous_secret_keys:
        click.echo(
            "note: BEDSIDE_PREVIOUS_SECRET_KEYS is empty; only values already under the current key can be read",
            err=True,
        )

    async def go():  # type: ignore[no-untyped-def]
        db = Database(settings)
        try:
            return await rotate_patient_identifiers(
                db, FieldCipher(settings), batch_size=batch_size
            )
        finally:
            await db.dispose()

    report = _run(go())
    click.echo(
        f"patients: {report.patients}, values re-encrypted: {report.values}, unreadable: {report.unreadable}"
    )
    if report.unreadable:
        click.echo(
            "some values are under a key that is not configured; add it to BEDSIDE_PREVIOUS_SECRET_KEYS and run again",
            err=True,
        )
        sys.exit(1)


@main.command("backup")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="default: <data dir>/backups/bedside-<time>.dump",
)
def backup_command(output: Path | None) -> None:
    """Back up the database: pg_dump -Fc (PostgreSQL) or SQLite's online backup."""
    from api.backup import BackupError, backup, default_output

    settings = load_settings()
    try:
        written = backup(settings, output or default_output(settings))
    except BackupError as exc:
        click.echo(f"backup failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"backup written / 备份完成: {written} ({written.stat().st_size} bytes)")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_command(source: Path) -> None:
    """Restore a backup into the empty database BEDSIDE_DATABASE_URL names; then run `bedside audit verify`."""
    from api.backup import BackupError, restore

    try:
        restore(load_settings(), source)
    except BackupError as exc:
        click.echo(f"restore failed: {exc}", err=True)
        sys.exit(1)
    click.echo("restored / 恢复完成; now run: bedside audit verify")


# --- end hardening ---


if __name__ == "__main__":
    main()
