"""Hypothesis over the bot callbacks and the HL7 listener: malformed, forged and
well-signed-but-nonsense input gets an answer (never a 500, never a dead listener) and a
refused message writes nothing.
"""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.services import Services
from integrations.hl7.mllp import MLLPClient, MLLPServer
from tests.bots.conftest import bot_http, bots, redis_url  # noqa: F401 - fixtures
from tests.hl7.conftest import his, hl7_config, listener  # noqa: F401 - fixtures
from tests.hl7.standard import Person, adt, encode, read_ack
from tests.simulators.platforms import (  # noqa: F401 - fixtures
    dingtalk_callback,
    dingtalk_card_tap,
    oa_callback,
    platform_sim,
    platform_sim_server,
    wecom_callback,
)

FUZZ = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
# Written on purpose for refused input: the message logs and the throttles.
LOGGED = ("hl7_", "access_log", "login_throttle", "bot_callback", "bot_event", "inbound")

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)


async def snapshot(services: Services) -> dict[str, int]:
    async with services.db.session() as session:
        tables = (
            (
                await session.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            )
            .scalars()
            .all()
        )
        tables = [t for t in tables if not t.startswith(LOGGED)]
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        counts = dict((await session.execute(sa.text(sql))).all())
        counts["tasks decided"] = (
            await session.execute(
                sa.text("SELECT count(*) FROM approval_task WHERE status <> 'pending'")
            )
        ).scalar_one()
        return counts


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int | None]]:
    return {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}


@FUZZ
@given(
    path=st.sampled_from(
        ["/bots/dingtalk/callback", "/bots/wecom/callback", "/bots/wechat-oa/callback"]
    ),
    method=st.sampled_from(["GET", "POST"]),
    params=st.dictionaries(
        st.sampled_from(
            ["msg_signature", "signature", "timestamp", "nonce", "echostr", "encrypt_type"]
        ),
        text,
        max_size=5,
    ),
    body=st.one_of(
        st.binary(max_size=300),
        text.map(str.encode),
        st.just(b"<xml><Encrypt>AAAA</Encrypt></xml>"),
        st.just(b'{"encrypt": "x"}'),
    ),
)
async def test_forged_or_garbage_callbacks_are_refused_without_writes(
    bots: Services, bot_http: httpx.AsyncClient, path, method, params, body
) -> None:  # noqa: F811
    before = await snapshot(bots)
    response = await bot_http.request(
        method, path, params=params, content=body if method == "POST" else None
    )
    assert response.status_code < 500, response.text
    assert changed(before, await snapshot(bots)) == {}


@FUZZ
@given(
    userid=st.one_of(text, st.sampled_from(["chief.wang", "ma.zhao", "nobody", ""])),
    action=st.one_of(text, st.sampled_from(["approve", "reject", "return", "detail"])),
    track=st.one_of(text, st.integers().map(str)),
    platform=st.sampled_from(["dingtalk", "wecom", "oa"]),
    extra=st.dictionaries(text, st.one_of(text, st.integers()), max_size=3),
)
async def test_signed_nonsense_callbacks_answer_and_decide_nothing(
    bots: Services, bot_http: httpx.AsyncClient, userid, action, track, platform, extra
) -> None:  # noqa: F811
    before = await snapshot(bots)
    if platform == "dingtalk":
        payload = {
            **dingtalk_card_tap(out_track_id=track, userid=userid, action=action),
            **{f"x{k}": v for k, v in extra.items()},
        }
        params, body = dingtalk_callback(payload)
        response = await bot_http.post("/bots/dingtalk/callback", params=params, json=body)
    elif platform == "wecom":
        fields = {
            "ToUserName": "wwsimcorp0001",
            "FromUserName": userid,
            "CreateTime": 1700000000,
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": action,
            "TaskId": track,
            "ResponseCode": "rc",
            "AgentID": 1000002,
        }
        params, xml = wecom_callback(fields)
        response = await bot_http.post("/bots/wecom/callback", params=params, content=xml.encode())
    else:
        fields = {
            "ToUserName": "gh_sim",
            "FromUserName": userid or "o",
            "CreateTime": 1700000000,
            "MsgType": action or "text",
            "Content": track,
            "Event": action,
            "EventKey": track,
        }
        params, xml = oa_callback(fields)
        response = await bot_http.post(
            "/bots/wechat-oa/callback", params=params, content=xml.encode()
        )
    assert response.status_code < 500, response.text
    # An authentic delivery enters the tap inbox (bot_tap, by design: written before the
    # platform gets its answer); nobody bound taps a real card, so nothing else changes.
    difference = changed(before, await snapshot(bots))
    difference.pop("bot_tap", None)
    assert difference == {}


def _ack_code(reply: bytes | None) -> str | None:
    """MSA-1 of the reply, whatever charset the listener answered in."""
    if not reply or b"MSA|" not in reply:
        return None
    return reply.split(b"MSA|", 1)[1][:2].decode("ascii", "replace")


def _mutate(message: str, cuts: list[int], junk: list[str]) -> str:
    out = message
    for cut, piece in zip(cuts, junk, strict=False):
        position = cut % (len(out) + 1)
        out = out[:position] + piece + out[position + len(piece) % 7 :]
    return out


@FUZZ
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=4),
    junk=st.lists(
        st.one_of(
            text,
            st.sampled_from(
                ["|", "^", "~", "\\", "&", "\r", "\n", "MSH|", "PID|", "\x00", "\x0b", "\x1c"]
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
async def test_hl7_listener_survives_malformed_messages(
    demo: Services, listener: MLLPServer, his: MLLPClient, cuts, junk, raw
) -> None:  # noqa: F811
    before = await snapshot(demo)
    payload = (
        raw
        if raw is not None
        else _mutate(adt("A04", "FUZZ-1", Person(mrn="FZ1")).to_er7(), cuts, junk).encode(
            "utf-8", "replace"
        )
    )
    try:
        reply = await his.send(payload)
    except (ConnectionError, TimeoutError, OSError):
        reply = (
            None  # the listener may drop a connection that speaks nonsense; it must keep listening
        )
    code = _ack_code(reply)
    if code not in ("AA", "CA"):  # CA: the mutation asked for enhanced mode (MSH-15)
        assert changed(before, await snapshot(demo)) == {}, (payload, code)
    async with MLLPClient("127.0.0.1", listener.port, timeout=10) as fresh:
        assert (
            read_ack(await fresh.send(encode(adt("A04", "ALIVE-1", Person(mrn="ALIVE"))))).code
            == "AA"
        )
