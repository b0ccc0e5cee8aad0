// The outbox: edits made on the device become named mutations with consecutive ids
// (per client) and wait here until the server acknowledges them through syncPush.
// The server skips ids it has already applied, so pushing the same batch twice — after a
// lost acknowledgement, or from the page and the service worker — applies it once.
import { ApiError } from '../api/errors'
import { db, type OutboxMutation } from './db'
import { exclusive } from './lock'

/** Bumped when a mutation's arguments change shape; the server upgrades or rejects old ones. */
export const SCHEMA_VERSION = 1
const BATCH_SIZE = 100

export interface MutationResult {
  id: number
  status: string // APPLIED | REJECTED | CONFLICT | SKIPPED | MERGED …
  code?: string | null
  reason?: string | null
}

export interface PushRequest {
  clientGroupId: string
  clientId: string
  schemaVersion: number
  mutations: { id: number; name: string; args: Record<string, unknown>; clientTime: string }[]
}

export interface PushResponse {
  lastMutationId: number
  results?: MutationResult[]
}

export type Pusher = (request: PushRequest) => Promise<PushResponse>
export type Uploader = (attachment: { hash: string; blob: Blob; mime: string; kind: string }) => Promise<void>

export interface PushOutcome {
  pushed: number
  rejected: number
  remaining: number
  error?: ApiError
}

function newId(): string {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

/** This device's client ids, created once and kept with the outbox they number. */
export async function clientIds(): Promise<{ clientGroupId: string; clientId: string }> {
  const store = db()
  return store.transaction('rw', store.meta, async () => {
    let clientGroupId = await store.getMeta<string>('clientGroupId')
    let clientId = await store.getMeta<string>('clientId')
    if (!clientGroupId) await store.setMeta('clientGroupId', (clientGroupId = newId()))
    if (!clientId) await store.setMeta('clientId', (clientId = newId()))
    return { clientGroupId, clientId }
  })
}

/** Queue a named mutation; returns its id. Atomic with the id counter, so ids never repeat. */
export async function enqueue(name: string, args: Record<string, unknown>, attachments: string[] = []): Promise<number> {
  const store = db()
  return store.transaction('rw', store.outbox, store.meta, async () => {
    const id = ((await store.getMeta<number>('lastQueuedId')) ?? 0) + 1
    const mutation: OutboxMutation = { id, name, args, clientTime: new Date().toISOString() }
    if (attachments.length) mutation.attachments = attachments
    await store.outbox.add(mutation)
    await store.setMeta('lastQueuedId', id)
    return id
  })
}

export async function pendingCount(): Promise<number> {
  return db().outbox.count()
}

export async function pending(): Promise<OutboxMutation[]> {
  return db().outbox.orderBy('id').toArray()
}

async function uploadWaiting(mutations: OutboxMutation[], upload: Uploader): Promise<void> {
  const hashes = new Set(mutations.flatMap((m) => m.attachments ?? []))
  for (const hash of hashes) {
    const attachment = await db().attachments.get(hash)
    if (!attachment || attachment.uploaded) continue
    await upload(attachment)
    await db().attachments.update(hash, { uploaded: 1 })
  }
}

/**
 * Push everything queued, in id order, batch by batch. Returns what happened; never
 * throws. A temporary failure (offline, server down) or an expired session leaves the
 * queue as it was for the next attempt; nothing is dropped.
 */
export function pushOutbox(push: Pusher, upload?: Uploader): Promise<PushOutcome> {
  return exclusive('bedside-outbox-push', async () => {
    const store = db()
    const outcome: PushOutcome = { pushed: 0, rejected: 0, remaining: 0 }
    const ids = await clientIds()
    for (;;) {
      const batch = await store.outbox.orderBy('id').limit(BATCH_SIZE).toArray()
      if (!batch.length) break
      let response: PushResponse
      try {
        if (upload) await uploadWaiting(batch, upload)
        response = await push({
          ...ids,
          schemaVersion: SCHEMA_VERSION,
          mutations: batch.map(({ id, name, args, clientTime }) => ({ id, name, args, clientTime })),
        })
      } catch (err) {
        outcome.error = err instanceof ApiError ? err : new ApiError('NETWORK', String(err))
        break
      }
      const acknowledged = batch.filter((m) => m.id <= response.lastMutationId)
      const results = new Map((response.results ?? []).map((r) => [Number(r.id), r]))
      await store.transaction('rw', store.outbox, store.rejected, async () => {
        for (const mutation of acknowledged) {
          const result = results.get(mutation.id)
          if (result && result.status.toUpperCase() === 'REJECTED') {
            await store.rejected.put({
              ...mutation,
              code: result.code ?? 'REJECTED',
              reason: result.reason ?? '',
              rejectedAt: new Date().toISOString(),
            })
            outcome.rejected += 1
          }
        }
        await store.outbox.bulkDelete(acknowledged.map((m) => m.id))
      })
      outcome.pushed += acknowledged.length
      // A gap or a stop on the server's side: try again later rather than spin.
      if (acknowledged.length < batch.length) break
    }
    outcome.remaining = await store.outbox.count()
    return outcome
  })
}
