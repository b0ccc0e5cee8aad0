// Web push: after login, subscribe with the server's VAPID key and register the
// subscription. Quietly does nothing where the browser or webview has no push.
import { gql } from './api/graphql'
import { REGISTER_PUSH, VAPID_KEY } from './api/operations'

function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const padded = (value + '='.repeat((4 - (value.length % 4)) % 4)).replace(/-/g, '+').replace(/_/g, '/')
  const raw = atob(padded)
  const bytes = new Uint8Array(new ArrayBuffer(raw.length))
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i)
  return bytes
}

function bytesToBase64Url(buffer: ArrayBuffer | null): string {
  if (!buffer) return ''
  return btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export async function subscribeToPush(): Promise<boolean> {
  try {
    if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return false
    const { vapidPublicKey } = await gql<{ vapidPublicKey: string | null }>(VAPID_KEY)
    if (!vapidPublicKey) return false
    if (Notification.permission === 'default' && (await Notification.requestPermission()) !== 'granted') return false
    if (Notification.permission !== 'granted') return false
    const registration = await navigator.serviceWorker.ready
    const subscription =
      (await registration.pushManager.getSubscription()) ??
      (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(vapidPublicKey) }))
    await gql(REGISTER_PUSH, {
      input: {
        endpoint: subscription.endpoint,
        p256dh: bytesToBase64Url(subscription.getKey('p256dh')),
        auth: bytesToBase64Url(subscription.getKey('auth')),
        userAgent: navigator.userAgent.slice(0, 200),
      },
    })
    return true
  } catch {
    return false
  }
}
