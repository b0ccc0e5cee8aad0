import { Workbox } from 'workbox-window'
import { router } from './router'
import { syncNow } from './stores/network'

/** Register the service worker; follow its messages (a notification tap, a sync done). */
export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return
  const wb = new Workbox('/sw.js', { scope: '/' })
  wb.addEventListener('message', (event) => {
    const data = event.data as { type?: string; url?: string } | undefined
    if (data?.type === 'open' && data.url) void router.push(data.url)
  })
  // The new version takes over at once (skipWaiting in sw.ts); reload for its assets only
  // when nothing is being typed — here simply on the next navigation.
  void wb.register()
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data?.type === 'outbox-pushed') void syncNow()
  })
}
