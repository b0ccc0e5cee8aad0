// Who is signed in. Kept in IndexedDB too, so a reload with the network off still knows
// the user (and the service worker can push the outbox with the token).
import { reactive, computed } from 'vue'
import { configureClient, gql } from '../api/graphql'
import { LOGIN, ME } from '../api/operations'
import { db } from '../offline/db'
import { clearCache } from '../offline/cache'

export interface Me {
  id: string
  username: string
  displayName: string
  roles: string[]
  department: { id: string; name: string } | null
  // An initial or one-time password: nothing else opens until it is changed.
  mustChangePassword?: boolean
}

interface SessionState {
  token: string | null
  me: Me | null
  restored: boolean
  expired: boolean
}

export const session = reactive<SessionState>({ token: null, me: null, restored: false, expired: false })

export const APPROVER_ROLES = ['surgeon', 'dept_head', 'medical_affairs', 'vice_president', 'party_branch', 'committee', 'quality']

export function hasRole(...roles: string[]): boolean {
  return !!session.me?.roles.some((r) => roles.includes(r))
}

export const isSignedIn = computed(() => !!session.token && !!session.me)

configureClient({
  token: () => session.token,
  // An expired token: sign in again; the outbox stays and is replayed after login.
  onUnauthenticated: () => {
    session.expired = true
    session.token = null
    void db().setMeta('session', null)
  },
})

// What a platform's sign-in hands over in the URL fragment (never sent to a server): the
// Official Account's OAuth return puts `#token=` (a bound patient) or `#ticket=` (a
// one-time binding ticket) there. Taken once at start-up, before the router reads the URL.
const handed: { token: string | null } = { token: null }
const TICKET_KEY = 'bedside.bindTicket'

export function takeHandedCredentials(): void {
  if (typeof window === 'undefined' || !window.location.hash) return
  const params = new URLSearchParams(window.location.hash.slice(1))
  const token = params.get('token')
  const ticket = params.get('ticket')
  if (!token && !ticket) return
  if (token) handed.token = token
  if (ticket) sessionStorage.setItem(TICKET_KEY, ticket)
  // Out of the address bar and the history: a shared or reloaded link carries no credential.
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search)
}

export function bindTicket(): string | null {
  return typeof sessionStorage === 'undefined' ? null : sessionStorage.getItem(TICKET_KEY)
}

export function dropBindTicket(): void {
  sessionStorage.removeItem(TICKET_KEY)
}

export async function restoreSession(): Promise<void> {
  const saved = await db().getMeta<{ token: string; me: Me }>('session')
  if (saved?.token) {
    session.token = saved.token
    session.me = saved.me
  }
  if (handed.token) {
    const token = handed.token
    handed.token = null
    try {
      await adoptToken(token)
    } catch {
      // expired or refused: whoever was signed in stays; otherwise the sign-in page
    }
  }
  session.restored = true
}

/** Sign in with a token the server issued elsewhere (a platform's sign-in, binding). */
export async function adoptToken(token: string): Promise<Me> {
  const { me } = await gql<{ me: Me }>(ME, {}, token)
  const previous = await db().getMeta<string>('lastUser')
  // Another person on this device must not see the previous user's cached data. Their
  // unsent edits stay in the outbox and go out under their own login.
  if (previous && previous !== me.username) await clearCache()
  session.token = token
  session.me = me
  session.expired = false
  await db().setMeta('session', { token, me })
  await db().setMeta('lastUser', me.username)
  return me
}

export async function login(username: string, password: string): Promise<Me> {
  const { login: result } = await gql<{ login: { token: string } }>(LOGIN, { username, password }, null)
  return adoptToken(result.token)
}

export async function logout(): Promise<void> {
  session.token = null
  session.me = null
  await db().setMeta('session', null)
  await clearCache()
}
