// Queries remembered on the device: the last good answer is shown at once (also with the
// network off) and replaced when the network answers.
import { ApiError } from '../api/errors'
import { db } from './db'

export interface Cached<T> {
  data: T
  at: string
  fromCache: boolean
}

export async function readCache<T>(key: string): Promise<Cached<T> | null> {
  const row = await db().cache.get(key)
  return row ? { data: row.data as T, at: row.at, fromCache: true } : null
}

export async function writeCache<T>(key: string, data: T): Promise<void> {
  await db().cache.put({ key, data, at: new Date().toISOString() })
}

/**
 * Show the cached answer first (if any), then the network's. `show` is called once or
 * twice. Throws only when there is neither: a temporary error with nothing cached, or any
 * permanent error (the server said no — a stale cache must not hide that).
 */
export async function cacheThenNetwork<T>(
  key: string,
  fetcher: () => Promise<T>,
  show: (result: Cached<T>) => void,
): Promise<void> {
  const cached = await readCache<T>(key)
  if (cached) show(cached)
  try {
    const data = await fetcher()
    await writeCache(key, data)
    show({ data, at: new Date().toISOString(), fromCache: false })
  } catch (err) {
    if (err instanceof ApiError && err.temporary && cached) return
    throw err
  }
}

/** Forget everything cached for the previous user (on logout or a different login). */
export async function clearCache(): Promise<void> {
  await db().cache.clear()
}
