"""Offline sync: PADs keep working without a network and are reconciled exactly once.

Modelled on Replicache's push/pull, over GraphQL (`api/graphql/sync`):

- A device is a *client group* (one browser profile: page + service worker) of one user;
  each *client* in it numbers its mutations 1, 2, 3 ... and keeps them in an outbox
  until the server's `lastMutationId` for that client covers them.
- `syncPush` (`sync.push`) applies named mutators (`sync.areas.*`) that call the same
  `api.domain` services as GraphQL, with the user's permissions at apply time; each
  mutation commits together with its client's new `lastMutationId`. Replays are skipped,
  gaps stop the batch, permanent refusals are recorded and skipped over, attachments not
  yet uploaded make the mutation wait (`sync.attachments`).
- `syncPull` (`sync.pull`) answers puts and deletes for the user's partial view since a
  cookie, plus every client's `lastMutationId`; the cursor reads a trigger-fed change
  log by transaction id and snapshot so it never skips a concurrent commit
  (`sync.cursor` explains the choice).
- Edits merge field by field against the base the device saw; same-field races resolve
  by an order-independent rule and the loser is kept as a conflict (`sync.merge`,
  `sync.conflicts`).
- Notifications implied by applied mutations go to the outbox once, keyed by the fact
  they announce, and are suppressed when already stale (`sync.fanout`).
- Old clients: `sync.registry.SCHEMA_VERSION` / `MIN_SCHEMA_VERSION` and `@upgrade`
  rewrite queued mutations of older schemas; older than that they are rejected with
  VERSION_NOT_SUPPORTED (recorded, never dropped silently). An expired token gets
  UNAUTHENTICATED for the whole push: nothing is applied, the queue stays on the device.
"""
