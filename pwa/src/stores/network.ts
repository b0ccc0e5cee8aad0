// Online state and the count of unsent changes, for the banner every screen shows.
import { reactive } from 'vue'
import { liveQuery } from 'dexie'
import { db } from '../offline/db'
import { gql } from '../api/graphql'
import { SYNC_PULL, SYNC_PUSH } from '../api/operations'
import { pullChanges, type PullResponse } from '../offline/pull'
import { pushOutbox, type PushOutcome, type PushRequest, type PushResponse } from '../offline/outbox'
import { uploadAttachment } from '../offline/attachments'
import { hasRole, session } from './session'
import { countActions } from './treatments'

// `unsent` counts the user's actions (a bedside save is one), not the mutations sending them;
// `synced` goes up after each pull, so screens showing the server's state load it again.
export const network = reactive({ online: typeof navigator === 'undefined' ? true : navigator.onLine, unsent: 0, rejected: 0, syncing: false, lastError: '', synced: 0 })

export async function pushViaGraphQL(request: PushRequest): Promise<PushResponse> {
  const { syncPush } = await gql<{ syncPush: PushResponse }>(SYNC_PUSH, { input: request })
  return syncPush
}

export async function pullViaGraphQL(cookie: string | null, clientGroupId: string | null): Promise<PullResponse> {
  return (await gql<{ syncPull: PullResponse }>(SYNC_PULL, { cookie, clientGroupId })).syncPull
}

/** Push the outbox now (when online and signed in), then pull what changed. */
export async function syncNow(): Promise<PushOutcome | null> {
  if (!network.online || !session.token) return null
  network.syncing = true
  try {
    const outcome = await pushOutbox(pushViaGraphQL, (a) => uploadAttachment(a, session.token))
    network.lastError = outcome.error?.code ?? ''
    // The offline view (worklists, patients) is the bedside staff's; nobody else pulls.
    if (!outcome.error && hasRole('therapist', 'nurse')) await pullChanges(pullViaGraphQL).catch(() => undefined)
    if (!outcome.error) network.synced += 1
    return outcome
  } finally {
    network.syncing = false
  }
}

/** Ask the service worker to push when the connection returns (Background Sync). */
export async function requestBackgroundSync(): Promise<void> {
  try {
    const registration = await navigator.serviceWorker?.ready
    const sync = (registration as ServiceWorkerRegistration & { sync?: { register(tag: string): Promise<void> } })?.sync
    await sync?.register('bedside-outbox')
  } catch {
    // Not available (Firefox, Safari, some webviews): the page pushes on 'online' instead.
  }
}

export function watchNetwork(): void {
  window.addEventListener('online', () => {
    network.online = true
    void syncNow()
  })
  window.addEventListener('offline', () => (network.online = false))
  liveQuery(() => db().outbox.toArray()).subscribe((rows) => (network.unsent = countActions(rows)))
  liveQuery(() => db().rejected.count()).subscribe((n) => (network.rejected = n))
  // Retry now and then: a flaky ward Wi-Fi does not always fire 'online'.
  setInterval(() => {
    if (network.unsent > 0) void syncNow()
  }, 30_000)
}
