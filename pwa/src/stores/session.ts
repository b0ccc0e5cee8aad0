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

export async function restoreSession(): Promise<void> {
  const saved = await db().getMeta<{ token: string; me: Me }>('session')
  if (saved?.token) {
    session.token = saved.token
    session.me = saved.me
  }
  session.restored = true
}

export async function login(username: string, password: string): Promise<Me> {
  const { login: result } = await gql<{ login: { token: string } }>(LOGIN, { username, password }, null)
  const { me } = await gql<{ me: Me }>(ME, {}, result.token)
  const previous = await db().getMeta<string>('lastUser')
  // Another person on this device must not see the previous user's cached data. Their
  // unsent edits stay in the outbox and go out under their own login.
  if (previous && previous !== me.username) await clearCache()
  session.token = result.token
  session.me = me
  session.expired = false
  await db().setMeta('session', { token: result.token, me })
  await db().setMeta('lastUser', me.username)
  return me
}

export async function logout(): Promise<void> {
  session.token = null
  session.me = null
  await db().setMeta('session', null)
  await clearCache()
}
