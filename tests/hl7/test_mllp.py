"""MLLP framing against the real listener: split reads, batched frames, broken frames."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from api.models.patients import Patient
from api.services import Services
from integrations.hl7.mllp import (
    END_BLOCK,
    START_BLOCK,
    FrameDecoder,
    MLLPClient,
    MLLPServer,
    frame,
)
from tests.hl7.standard import Person, adt, encode, read_ack


async def count_patients(services: Services, prefix: str) -> int:
    async with services.db.session() as session:
        return (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(Patient)
                .where(Patient.mrn.startswith(prefix))
            )
        ).scalar_one()


async def test_a_frame_split_across_many_writes(listener: MLLPServer, demo: Services) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    data = frame(encode(adt("A04", "SPLIT-1", Person(mrn="S1"))))
    for i in range(0, len(data), 7):
        writer.write(data[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    decoder = FrameDecoder()
    replies: list[bytes] = []
    while not replies:
        replies = decoder.feed(await asyncio.wait_for(reader.read(4096), 10))
    assert read_ack(replies[0]).code == "AA"
    writer.close()


async def test_several_frames_in_one_write_are_answered_in_order(
    his: MLLPClient, demo: Services
) -> None:
    batch = b"".join(frame(encode(adt("A04", f"BATCH-{n}", Person(mrn=f"B{n}")))) for n in range(5))
    await his.send_raw(b"\r\n" + batch)  # noise between frames, as some senders keep-alive
    acks = [read_ack(await his.read_frame()) for _ in range(5)]
    assert [a.control_id for a in acks] == [f"BATCH-{n}" for n in range(5)]
    assert {a.code for a in acks} == {"AA"}
    assert await count_patients(demo, "B") == 5


async def test_truncated_frame_is_dropped_and_the_connection_goes_on(
    his: MLLPClient, demo: Services
) -> None:
    truncated = START_BLOCK + encode(adt("A04", "TRUNC-1", Person(mrn="T1")))[:60]
    # The sender gave up mid-message and started over with a new frame.
    await his.send_raw(truncated)
    reply = await his.send(encode(adt("A04", "TRUNC-2", Person(mrn="T2"))))
    assert read_ack(reply).control_id == "TRUNC-2"
    assert await count_patients(demo, "T") == 1


async def test_connection_closed_inside_a_frame_does_not_hurt_the_listener(
    listener: MLLPServer, demo: Services
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(START_BLOCK + encode(adt("A04", "CLOSED-1", Person(mrn="C1")))[:80])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    async with MLLPClient("127.0.0.1", listener.port, timeout=10) as client:
        assert (
            read_ack(await client.send(encode(adt("A04", "CLOSED-2", Person(mrn="C2"))))).code
            == "AA"
        )
    assert await count_patients(demo, "C") == 1


async def test_oversized_frame_closes_only_that_connection(
    listener: MLLPServer, his: MLLPClient, demo: Services
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(START_BLOCK + b"MSH|" + b"x" * (listener.max_frame_bytes + 10) + END_BLOCK)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, no reply
    writer.close()
    assert read_ack(await his.send(encode(adt("A04", "BIG-2", Person(mrn="G2"))))).code == "AA"


async def test_eight_connections_at_once(listener: MLLPServer, demo: Services) -> None:
    async def one_sender(n: int) -> list[str]:
        async with MLLPClient("127.0.0.1", listener.port, timeout=20) as client:
            return [
                read_ack(
                    await client.send(encode(adt("A04", f"CONN-{n}-{k}", Person(mrn=f"K{n}-{k}"))))
                ).code
                for k in range(3)
            ]

    results = await asyncio.gather(*(one_sender(n) for n in range(8)))
    assert all(code == "AA" for codes in results for code in codes)
    assert await count_patients(demo, "K") == 24


async def test_garbage_frame_gets_a_reject_not_a_crash(his: MLLPClient) -> None:
    reply = read_ack(await his.send(b"this is not hl7"))
    assert reply.code == "AR" and reply.err_code == "100"
    assert (
        read_ack(await his.send(encode(adt("A04", "AFTER-GARBAGE", Person(mrn="AG1"))))).code
        == "AA"
    )


def test_decoder_end_block_without_carriage_return() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(START_BLOCK + b"one" + END_BLOCK + START_BLOCK + b"tw") == [b"one"]
    assert decoder.pending
    assert decoder.feed(b"o" + END_BLOCK + b"\r") == [b"two"]
    assert not decoder.pending
