"""A test PAD: an outbox of named mutations, a local store, a cookie, over GraphQL/HTTP.

It behaves as the PWA's sync worker does: mutations are queued locally with increasing
ids, pushed in batches, dropped from the outbox once the server's lastMutationId covers
them (from the push answer or a later pull), and pulls apply puts and deletes to the
local store. Tests play several PADs at once and can lose acknowledgements on purpose.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from sync.registry import SCHEMA_VERSION

DEMO_PASSWORD = "bedside-demo"

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
PUSH = """
mutation($input: SyncPushInput!) {
  syncPush(input: $input) {
    lastMutationId
    results { id status code reason replayed entity entityId conflicts server detail }
  }
}"""
PULL = """
query($cookie: String, $group: String) {
  syncPull(cookie: $cookie, clientGroupId: $group) {
    cookie reset
    puts { entity id data }
    deletes { entity id }
    lastMutationIdChanges { clientId lastMutationId }
  }
}"""
CONFLICTS = "query { syncConflicts { id entity entityId field baseValue losingValue winningValue clientWon status } }"
RESOLVE = """
mutation($id: ID!, $r: ConflictResolution!, $v: JSON) {
  resolveSyncConflict(id: $id, resolution: $r, value: $v) { id status resolution }
}"""


class SyncError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error
        self.code = (error.get("extensions") or {}).get("code")


@dataclass
class Pad:
    http: httpx.AsyncClient
    username: str
    password: str = DEMO_PASSWORD
    client_group_id: str = field(default_factory=lambda: "g-" + uuid.uuid4().hex)
    client_id: str = field(default_factory=lambda: "c-" + uuid.uuid4().hex)
    schema_version: int = SCHEMA_VERSION
    token: str | None = None
    next_id: int = 1
    outbox: list[dict[str, Any]] = field(default_factory=list)
    store: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cookie: str | None = None
    last_mutation_id: int = 0
    results: dict[int, dict[str, Any]] = field(default_factory=dict)

    async def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        if body.get("errors"):
            raise SyncError(body["errors"][0])
        return body["data"]

    async def login(self) -> Pad:
        data = await self.graphql(LOGIN, {"u": self.username, "p": self.password})
        self.token = data["login"]["token"]
        return self

    # -- the outbox -------------------------------------------------------------------

    def mutate(
        self, name: str, args: dict[str, Any], *, client_time: datetime | None = None
    ) -> int:
        """Queue a mutation (made offline); returns its id."""
        mutation_id = self.next_id
        self.next_id += 1
        self.outbox.append(
            {
                "id": mutation_id,
                "name": name,
                "args": args,
                "clientTime": client_time.isoformat() if client_time else None,
            }
        )
        return mutation_id

    async def push_raw(self, mutations: list[dict[str, Any]]) -> dict[str, Any]:
        data = await self.graphql(
            PUSH,
            {
                "input": {
                    "clientGroupId": self.client_group_id,
                    "clientId": self.client_id,
                    "schemaVersion": self.schema_version,
                    "mutations": mutations,
                }
            },
        )
        return data["syncPush"]

    async def push(self, *, limit: int | None = None, lose_ack: bool = False) -> dict[str, Any]:
        """Send the outbox (or its first `limit` mutations). With `lose_ack` the answer
        never reaches the device: nothing is removed from its outbox."""
        batch = self.outbox[:limit] if limit else list(self.outbox)
        answer = await self.push_raw(batch)
        if not lose_ack:
            for result in answer["results"]:
                self.results[result["id"]] = result
            self._acknowledge(answer["lastMutationId"])
        return answer

    def _acknowledge(self, last_mutation_id: int) -> None:
        self.last_mutation_id = max(self.last_mutation_id, last_mutation_id)
        self.outbox = [m for m in self.outbox if m["id"] > self.last_mutation_id]

    # -- the local store --------------------------------------------------------------

    async def pull(self) -> dict[str, Any]:
        data = (await self.graphql(PULL, {"cookie": self.cookie, "group": self.client_group_id}))[
            "syncPull"
        ]
        if data["reset"]:
            self.store.clear()
        for put in data["puts"]:
            self.store[(put["entity"], str(put["id"]))] = put["data"]
        for gone in data["deletes"]:
            self.store.pop((gone["entity"], str(gone["id"])), None)
        for change in data["lastMutationIdChanges"]:
            if change["clientId"] == self.client_id:
                self._acknowledge(change["lastMutationId"])
        self.cookie = data["cookie"]
        return data

    def get(self, entity: str, entity_id: int | str) -> dict[str, Any] | None:
        return self.store.get((entity, str(entity_id)))

    def has(self, entity: str, entity_id: int | str) -> bool:
        return (entity, str(entity_id)) in self.store

    # -- conflicts --------------------------------------------------------------------

    async def conflicts(self) -> list[dict[str, Any]]:
        return (await self.graphql(CONFLICTS, {}))["syncConflicts"]

    async def resolve(self, conflict_id: str, resolution: str, value: Any = None) -> dict[str, Any]:
        return (await self.graphql(RESOLVE, {"id": conflict_id, "r": resolution, "v": value}))[
            "resolveSyncConflict"
        ]

    def twin(self) -> Pad:
        """The same client on a second connection (the page and its service worker)."""
        return Pad(
            self.http,
            self.username,
            client_group_id=self.client_group_id,
            client_id=self.client_id,
            token=self.token,
            outbox=list(self.outbox),
            next_id=self.next_id,
        )


async def pad(http: httpx.AsyncClient, username: str, **kwargs: Any) -> Pad:
    device = Pad(http, username, **kwargs)
    await device.login()
    await device.pull()
    return device
