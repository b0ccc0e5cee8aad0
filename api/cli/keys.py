"""Keys and backups: VAPID keys, re-encryption under a new secret, backup and restore."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import click

from api.cli.context import main, run
from api.settings import load_settings


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

    report = run(go())
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
