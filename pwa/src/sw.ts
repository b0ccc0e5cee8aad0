/// <reference lib="webworker" />
// The service worker: the precached app shell (so the app opens with the network off),
// web push and notification taps, and Background Sync of the outbox.
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching'
import { NavigationRoute, registerRoute } from 'workbox-routing'
import { CacheFirst } from 'workbox-strategies'
import { db } from './offline/db'
import { pushOutbox, type PushRequest, type PushResponse } from './offline/outbox'
import { uploadAttachment } from './offline/attachments'
import { gql } from './api/graphql'
import { SYNC_PUSH } from './api/operations'
import { localPath, screenFor, type NoticePayload } from './notice-links'

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: (string | { url: string; revision: string | null })[] }

precacheAndRoute(self.__WB_MANIFEST)
cleanupOutdatedCaches()

// Client-side routes open the app shell; the server's own paths never do.
registerRoute(
  new NavigationRoute(createHandlerBoundToURL('/index.html'), {
    denylist: [/^\/graphql/, /^\/bots\//, /^\/n\//, /^\/sync\//, /^\/attachments/, /^\/healthz/, /^\/readyz/, /^\/metrics/],
  }),
)

// Built assets not precached (the charts) are cached on first use; their names carry a
// content hash, so a cached copy never goes stale.
registerRoute(({ url, request }) => url.origin === self.location.origin && url.pathname.startsWith('/assets/') && request.destination === 'script', new CacheFirst({ cacheName: 'bedside-assets' }))

self.addEventListener('install', () => void self.skipWaiting())
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()))

async function tokenFromDevice(): Promise<string | null> {
  return (await db().getMeta<{ token: string } | null>('session'))?.token ?? null
}

async function pushFromWorker(): Promise<void> {
  const token = await tokenFromDevice()
  if (!token) return
  const push = async (request: PushRequest): Promise<PushResponse> =>
    (await gql<{ syncPush: PushResponse }>(SYNC_PUSH, { input: request }, token)).syncPush
  const outcome = await pushOutbox(push, (a) => uploadAttachment(a, token))
  for (const client of await self.clients.matchAll({ type: 'window' })) client.postMessage({ type: 'outbox-pushed', ...outcome, error: outcome.error?.code })
  // Background Sync retries later when the promise rejects.
  if (outcome.error?.temporary) throw outcome.error
}

self.addEventListener('sync', (event: Event) => {
  const e = event as Event & { tag: string; waitUntil(p: Promise<unknown>): void }
  if (e.tag === 'bedside-outbox') e.waitUntil(pushFromWorker())
})

self.addEventListener('push', (event) => {
  let payload: { title?: string; body?: string; data?: NoticePayload } & NoticePayload = {}
  try {
    payload = event.data?.json() ?? {}
  } catch {
    payload = { body: event.data?.text() }
  }
  const data = payload.data ?? payload
  event.waitUntil(
    self.registration.showNotification(payload.title ?? '床旁 Bedside', {
      body: payload.body ?? '',
      icon: '/icons/icon-192.png',
      badge: '/icons/icon-192.png',
      // The server's link (/n/<id>?sig=…) marks the notice read and leads to it.
      data: { url: localPath(payload.url, self.location.origin) ?? screenFor(data) },
    }),
  )
})

self.addEventListener('notificationclick', (event) => {
  event.notification.close()
  const url: string = event.notification.data?.url ?? '/'
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true })
      const open = windows[0] as WindowClient | undefined
      if (open) {
        await open.focus()
        // A server link must reach the server; an app route is routed in the page.
        if (url.startsWith('/n/')) await open.navigate(url)
        else open.postMessage({ type: 'open', url })
        return
      }
      await self.clients.openWindow(url)
    })(),
  )
})
