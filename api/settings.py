"""One settings object, read from BEDSIDE_* environment variables.

With nothing set, Bedside runs embedded: SQLite in a local file, background jobs in
process, messages to the in-app inbox. Setting BEDSIDE_DATABASE_URL and BEDSIDE_REDIS_URL
turns the same code into a fleet member.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The hosts whose pages embed the PWA in a frame (the platforms' web and desktop
# workbenches); phones open it in the platform's own webview, which is not a frame.
#   DingTalk: its web client and workbench pages are served from dingtalk.com hosts
#     (im.dingtalk.com, the workbench's h5 hosts), all under the company's own domain.
#   WeCom: the web workbench and admin console, https://work.weixin.qq.com.
#   WeChat: the Official Account platform's pages, https://mp.weixin.qq.com.
# Never a wildcard over qq.com: any Tencent-hosted page (user sites, QQ spaces) could
# frame the app and overlay it (clickjacking).
FRAME_ANCESTORS = (
    "https://*.dingtalk.com",
    "https://work.weixin.qq.com",
    "https://mp.weixin.qq.com",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEDSIDE_", extra="ignore")

    environment: str = "development"  # "production" turns off introspection and debug output
    database_url: str = "sqlite+aiosqlite:///./bedside.db"
    redis_url: str | None = None
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    # The system of the hospital's record numbers in FHIR (its OID as urn:oid:…, or a URL);
    # unset: <public URL>/fhir/sid/mrn.
    fhir_mrn_system: str = ""
    data_dir: Path = Path("./var")
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    log_json: bool = True

    # Database connections of one process (PostgreSQL). A request holds one only while it
    # talks to the database. When all are busy, a request waits up to `db_pool_timeout`
    # seconds for one (a burst queues) before it fails with TEMPORARILY_UNAVAILABLE. Keep
    # (size + overflow) x processes below PostgreSQL's max_connections (100 by default).
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout: float = 60.0
    # A pooled connection idle longer than this is pinged before use (one that was used
    # a moment ago is not: a busy process pays no ping per transaction).
    db_ping_after_idle_seconds: float = 2.0

    # Authentication
    token_ttl_seconds: int = 12 * 3600
    argon2_time_cost: int = 3
    argon2_memory_cost_kib: int = 65536
    argon2_parallelism: int = 2
    login_max_failures: int = 5
    login_lockout_seconds: int = 15 * 60
    # Older Fernet keys kept for reading identifiers encrypted before a key rotation.
    previous_secret_keys: list[str] = Field(default_factory=list)

    # Request limits
    max_comment_length: int = 2000
    max_request_bytes: int = 2 * 1024 * 1024
    # Resumable uploads from PADs (/sync/attachments): bytes one user may have announced in
    # unfinished uploads at once, and how long an unfinished upload is kept before the
    # periodic sweep deletes it.
    upload_pending_quota_bytes: int = 64 * 1024 * 1024
    upload_partial_ttl_seconds: int = 24 * 3600

    # Hardening: GraphQL limits, login throttling, password policy, CORS
    graphql_max_cost: int = 5000  # each field costs 1; a list field multiplies what it selects
    graphql_list_cost: int = 10  # assumed length of a list whose size the query does not bound
    graphql_introspection: bool | None = None  # None: on, except in production
    # JSON file of sha256 hashes of the only query documents accepted (the PWA's own);
    # unset accepts any document within the limits above.
    graphql_allowed_queries_file: Path | None = None
    login_max_failures_per_address: int = 30  # failed logins from one address per window
    login_address_window_seconds: int = 15 * 60
    password_min_length: int = 10
    # Origins allowed to call the API from a browser (the PWA when served elsewhere).
    cors_origins: list[str] = Field(default_factory=list)
    # Hosts allowed to show the PWA in a frame (CSP frame-ancestors), besides our origin.
    frame_ancestors: list[str] = Field(default_factory=lambda: list(FRAME_ANCESTORS))
    # Bearer token Prometheus sends to read /metrics; unset: /metrics answers loopback only.
    metrics_token: str | None = None
    # Systems that may ask GET /api/privilege-check (手麻, HIS): name -> SHA-256 (hex) of
    # the system's token, e.g. '{"anesthesia": "<sha256 of its token>"}'. Empty: nobody.
    privilege_check_tokens: dict[str, str] = Field(default_factory=dict)

    # Platforms (empty means the channel logs instead of sending)
    dingtalk_app_key: str | None = None
    dingtalk_app_secret: str | None = None
    dingtalk_agent_id: str | None = None
    dingtalk_callback_token: str | None = None
    dingtalk_callback_aes_key: str | None = None
    dingtalk_api_base: str = "https://oapi.dingtalk.com"
    wecom_corp_id: str | None = None
    wecom_secret: str | None = None
    wecom_agent_id: str | None = None
    wecom_token: str | None = None
    wecom_aes_key: str | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wechat_oa_app_id: str | None = None
    wechat_oa_secret: str | None = None
    wechat_oa_token: str | None = None
    wechat_oa_aes_key: str | None = None
    wechat_oa_api_base: str = "https://api.weixin.qq.com"
    # Platform details beyond the contract's credentials (bots and notification channels)
    dingtalk_corp_id: str | None = None  # for the in-app login (免登) JSAPI in the PWA
    dingtalk_api_v1_base: str | None = (
        None  # the v1.0 API (cards); unset: api.dingtalk.com, or _API_BASE when that is not the public one
    )
    dingtalk_robot_code: str | None = None  # the app's robot; unset: the AppKey (internal apps)
    dingtalk_card_template_id: str | None = None  # the approval task card built in the card builder
    dingtalk_card_callback_route_key: str = "bedside-approval"
    # HTTP mode: the apiSecret registered with the route key (`bedside dingtalk
    # register-card-callback`); DingTalk signs each card callback with it.
    dingtalk_card_callback_secret: str | None = None
    # Stream mode (the default): card taps arrive over the outbound `bedside dingtalk-stream`
    # connection, no public URL needed. False: HTTP mode, taps POSTed to the registered URL.
    dingtalk_use_stream: bool = True
    callback_max_age_seconds: int = 300  # a signed callback older than this is refused
    # True: a callback's process decides the taps it stored, right after answering. False: the
    # callbacks only store and answer; `bedside bots work` (a separate process) decides.
    bots_decide_in_process: bool = True
    wechat_oa_oauth_base: str = "https://open.weixin.qq.com"
    wecom_oauth_base: str = "https://open.weixin.qq.com"  # WeCom's web OAuth (网页授权)
    # Official Account template messages by purpose (booking_confirmed, booking_reminder,
    # booking_changed, followup_due): {purpose: {"template_id", "data": {key: fact}}} —
    # see notifications/delivery/channels/oa_templates.py; or template ids alone with default keys.
    wechat_oa_templates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    wechat_oa_template_ids: dict[str, str] = Field(default_factory=dict)
    vapid_private_key: str | None = None
    vapid_subject: str = "mailto:it@hospital.example"

    # Notifications: an HTTP endpoint of the hospital's own that also receives every
    # message (integration platform, SMS gateway), and how often the sweep runs.
    notify_webhook_url: str | None = None
    notify_sweep_seconds: float = 10.0

    @property
    def dingtalk_v1_base(self) -> str:
        if self.dingtalk_api_v1_base:
            return self.dingtalk_api_v1_base
        if self.dingtalk_api_base.rstrip("/") == "https://oapi.dingtalk.com":
            return "https://api.dingtalk.com"
        return self.dingtalk_api_base  # a simulator serves both APIs on one base

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def effective_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data directory.

        A fleet must set BEDSIDE_SECRET_KEY: every process has to sign and check the same
        tokens. The embedded default keeps its key on disk so restarts keep logins valid.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
