"""The `bedside` command."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from pathlib import Path

import click

from api.domain import import_all_domain_modules
from api.settings import load_settings

# Exit code for "a service this command needs does not answer" (1 is kept for a broken
# hash chain, 2 for a command refused for its configuration).
EXIT_SERVICE_UNREACHABLE = 3


def _unreachable(exc: BaseException) -> str | None:
    """The operator's sentence for a database or Redis that does not answer, else None."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import InterfaceError, OperationalError

    settings = load_settings()
    if isinstance(exc, RedisConnectionError):
        return (
            f"Redis 无法连接 / Redis does not answer at {_safe_url(settings.redis_url)} "
            f"(BEDSIDE_REDIS_URL): {exc}"
        )
    if isinstance(exc, OperationalError | InterfaceError | ConnectionRefusedError | TimeoutError):
        return (
            f"数据库无法连接 / the database does not answer at {_safe_url(settings.database_url)} "
            f"(BEDSIDE_DATABASE_URL): {getattr(exc, 'orig', None) or exc}"
        )
    return None


def _safe_url(url: str | None) -> str:
    from sqlalchemy.engine import make_url

    if not url:
        return "(unset)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a redis:// URL SQLAlchemy cannot parse
        return url.split("@")[-1]


def _run(coro):  # type: ignore[no-untyped-def]
    try:
        return asyncio.run(coro)
    except Exception as exc:
        message = _unreachable(exc)
        if message is None:
            raise
        click.echo(message, err=True)
        sys.exit(EXIT_SERVICE_UNREACHABLE)


# Exit codes beside 0 (done) and 1 (the command's own failure: a broken hash chain for
# `audit verify`, rows refused for `import`): 2 is a usage error (click's), and
EXIT_NO_SCHEMA = 3  # the database has no Bedside schema: run `bedside migrate` first
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _sqlite_file(settings) -> Path | None:  # type: ignore[no-untyped-def]
    from sqlalchemy.engine import make_url

    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def _db_settings():  # type: ignore[no-untyped-def]
    """Settings for a command that opens the database; warns when the embedded default
    (a path relative to the current folder) is used outside the project folder, where it
    names a different, usually empty, database file."""
    settings = load_settings()
    path = _sqlite_file(settings)
    if path is not None and not path.is_absolute() and Path.cwd().resolve() != PROJECT_ROOT:
        click.echo(
            f"注意：数据库路径 {path} 是相对路径，指向 {(Path.cwd() / path).resolve()}，"
            f"不在项目目录 {PROJECT_ROOT} 中；请将 BEDSIDE_DATABASE_URL 设为绝对路径。\n"
            f"warning: the database path {path} is relative and resolves to "
            f"{(Path.cwd() / path).resolve()}, outside the project folder; "
            "set BEDSIDE_DATABASE_URL to an absolute path.",
            err=True,
        )
    return settings


def _require_schema(settings) -> None:  # type: ignore[no-untyped-def]
    """Stop with EXIT_NO_SCHEMA, creating nothing, when the database is not migrated."""
    import sqlalchemy as sa

    from api.db import make_engine

    where = settings.database_url
    path = _sqlite_file(settings)
    if path is not None:
        import sqlite3

        where = str(path.resolve())
        if not path.exists():
            _no_schema(where)  # connecting would create an empty file
        # Read-only, without the engine's pragmas (WAL would write to the file).
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
        if found is None:
            _no_schema(where)
        return

    async def has_schema() -> bool:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))
        finally:
            await engine.dispose()

    if not _run(has_schema()):
        _no_schema(where)


def _no_schema(where: str) -> None:
    click.echo(
        f"数据库中没有 Bedside 的表结构（{where}）：请检查 BEDSIDE_DATABASE_URL，"
        "或先运行 bedside migrate。\n"
        f"no Bedside schema in the database ({where}): check BEDSIDE_DATABASE_URL, "
        "or run `bedside migrate` first.",
        err=True,
    )
    sys.exit(EXIT_NO_SCHEMA)


def _cli_actor():  # type: ignore[no-untyped-def]
    """The operator at the console: acts as the system, recorded as via the command line."""
    from dataclasses import replace

    from api.auth import SYSTEM_ACTOR

    return replace(SYSTEM_ACTOR, via="cli")


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

    settings = _db_settings()

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

    settings = _db_settings()
    _require_schema(settings)
    services = Services.build(settings)

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
    """Check every hash chain; exit 1 naming the first broken event, 3 when there is no schema."""
    # Domain modules register the hash chains that must exist (one per approval …).
    import_all_domain_modules()
    from api.audit import verify_chains
    from api.db import Database

    settings = _db_settings()
    _require_schema(settings)

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
@click.option(
    "--host",
    default=None,
    help="address to listen on; default BEDSIDE_HL7_HOST (127.0.0.1); 0.0.0.0 for the HIS",
)
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

    settings = _db_settings()
    _require_schema(settings)
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


# --- going live: imports, accounts -------------------------------------------------------
@main.group("import")
def import_group() -> None:
    """Load the hospital's own data from .xlsx or .csv (templates: `bedside import template KIND`).

    Order: departments, staff, catalog, items, schedules, penalty-items.
    """


def _print_report(report, *, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    labels = {"create": "新增 create", "update": "更新 update", "unchanged": "未变 unchanged"}
    if dry_run:
        for row in report.rows:
            detail = f" ({', '.join(row.changes)})" if row.changes else ""
            click.echo(f"第{row.row}行 row {row.row}\t{labels[row.action]}\t{row.what}{detail}")
    for error in report.errors:
        click.echo(str(error), err=True)
    if report.errors:
        click.echo(
            f"{len(report.errors)} 处错误，未写入任何数据 / {len(report.errors)} errors, nothing written",
            err=True,
        )
        return
    click.echo(report.summary)
    click.echo(
        "试运行，未写入任何数据 / dry run, nothing written" if dry_run else "已导入 / imported"
    )


def _import_command(kind: str):  # type: ignore[no-untyped-def]
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="show what would change, write nothing")
    def command(file: Path, dry_run: bool) -> None:
        from api.domain.imports import run_import
        from api.services import Services

        settings = _db_settings()
        _require_schema(settings)
        services = Services.build(settings)

        def progress(done: int, total: int) -> None:
            if total >= 500:
                click.echo(f"… {done}/{total}", err=True)

        async def go():  # type: ignore[no-untyped-def]
            try:
                async with services.db.sessionmaker() as session:
                    report = await run_import(
                        session,
                        kind,
                        file,
                        actor=_cli_actor(),
                        settings=settings,
                        hashing=services.hashing,
                        progress=progress,
                    )
                    if report.ok and not dry_run:
                        await session.commit()
                    else:
                        await session.rollback()
                    return report
            finally:
                await services.db.dispose()

        report = _run(go())
        _print_report(report, dry_run=dry_run)
        if not report.ok:
            sys.exit(1)

    from api.domain.imports.kinds import TITLES

    command.__doc__ = (
        f"Import {TITLES[kind]} from FILE (.xlsx or .csv); nothing written when any row fails."
    )
    return import_group.command(kind)(command)


def _register_imports() -> None:
    from api.domain.imports.kinds import ORDER

    for kind in ORDER:
        _import_command(kind)


_register_imports()


@import_group.command("template")
@click.argument("kind")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="default: bedside-import-KIND.xlsx in the current folder",
)
def import_template(kind: str, output: Path | None) -> None:
    """Write the .xlsx template of KIND (Chinese headers, an example row, notes)."""
    from api.domain.imports import FileError, template

    target = output or Path(f"bedside-import-{kind}.xlsx")
    try:
        template(kind, target)
    except FileError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"模板已写入 / template written: {target}")


@main.group()
def users() -> None:
    """Accounts."""


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """End USERNAME's lockout now (recorded in the user's history)."""
    from api.domain import people
    from api.errors import DomainError
    from api.services import Services

    settings = _db_settings()
    _require_schema(settings)
    services = Services.build(settings)

    async def go() -> bool:
        try:
            async with services.db.transaction() as session:
                user = await people.user_by_username(session, username)
                return await people.unlock_user(session, user, actor=_cli_actor())
        finally:
            await services.db.dispose()

    try:
        was_locked = _run(go())
    except DomainError as exc:
        click.echo(exc.message, err=True)
        sys.exit(1)
    if was_locked:
        click.echo(f"已解除锁定 / unlocked: {username}")
    else:
        click.echo(f"账户未被锁定，已清零失败次数 / {username} was not locked; failure count reset")


@main.group()
def directory() -> None:
    """The hospital's directory on DingTalk or WeCom."""


@directory.command("sync")
@click.argument("platform", type=click.Choice(["dingtalk", "wecom"]))
@click.option("--dry-run", is_flag=True, help="show what would change, write nothing")
@click.option(
    "--allow-many-leavers",
    is_flag=True,
    help="deactivate even when more than a fifth of the bound people are missing",
)
def directory_sync(platform: str, dry_run: bool, allow_many_leavers: bool) -> None:
    """Match the platform's members to staff (bound id, mobile, job number), bind their
    ids, report who matched nobody, deactivate leavers (their tasks to the department head)."""
    from api.domain.directory import DirectoryEntry, sync_directory
    from api.errors import DomainError
    from api.services import Services
    from integrations.platforms import PlatformError, build_platforms

    settings = _db_settings()
    _require_schema(settings)
    services = Services.build(settings)
    platforms = build_platforms(settings)
    client = platforms.dingtalk if platform == "dingtalk" else platforms.wecom
    if not client.configured:
        click.echo(
            f"{platform} 未配置 / not configured: set BEDSIDE_{platform.upper()}_* first", err=True
        )
        sys.exit(2)

    async def go():  # type: ignore[no-untyped-def]
        try:
            departments, members = await client.directory()
            entries = [
                DirectoryEntry(
                    external_id=m["userid"],
                    name=m["name"],
                    mobile=m["mobile"],
                    job_number=m["job_number"],
                    left=m["left"],
                )
                for m in members
            ]
            async with services.db.sessionmaker() as session:
                report = await sync_directory(
                    session,
                    platform,
                    entries,
                    actor=_cli_actor(),
                    allow_many_leavers=allow_many_leavers,
                )
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
            return len(departments), len(members), report
        finally:
            await platforms.aclose()
            await services.db.dispose()

    try:
        departments, members, report = _run(go())
    except (DomainError, PlatformError) as exc:
        click.echo(getattr(exc, "message", str(exc)), err=True)
        sys.exit(1)
    click.echo(f"通讯录 / directory: {departments} departments, {members} members")
    for username, external_id, how in report.bound:
        click.echo(f"绑定 bound\t{username}\t{external_id}\t(by {how})")
    for entry, why in report.unmatched:
        click.echo(
            f"未匹配 unmatched\t{entry.external_id}\t{entry.name}\t{entry.mobile or '-'}\t"
            f"{entry.job_number or '-'}\t{why}"
        )
    for task_id, leaver, head in report.handed_over:
        click.echo(f"转交 handed over\ttask {task_id}\t{leaver} -> {head}")
    for task_id, leaver in report.not_handed_over:
        click.echo(f"未能转交 not handed over\ttask {task_id}\t{leaver}", err=True)
    for username in report.deactivated:
        click.echo(f"停用 deactivated\t{username}")
    click.echo(
        f"已绑定 {report.already_bound}，新绑定 {len(report.bound)}，未匹配 {len(report.unmatched)}，"
        f"停用 {len(report.deactivated)} / already bound {report.already_bound}, "
        f"bound {len(report.bound)}, unmatched {len(report.unmatched)}, "
        f"deactivated {len(report.deactivated)}"
    )
    if dry_run:
        click.echo("试运行，未写入任何数据 / dry run, nothing written")


# --- end going live ------------------------------------------------------------------------


if __name__ == "__main__":
    main()
