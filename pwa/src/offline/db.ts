// The device's own database (IndexedDB through Dexie). It holds everything that must
// survive a reload with the network off: the outbox of named mutations, attachments not
// yet uploaded, cached query results, conflicts to resolve, and the session.
import Dexie, { type Table } from 'dexie'

/** A named mutation waiting to be pushed; ids are consecutive per client (sync protocol). */
export interface OutboxMutation {
  id: number
  name: string
  args: Record<string, unknown>
  clientTime: string
  /** Content hashes of attachments this mutation references (uploaded before the push). */
  attachments?: string[]
}

/** A mutation the server refused for good (validation, permission, deleted record). */
export interface RejectedMutation extends OutboxMutation {
  code: string
  reason: string
  rejectedAt: string
}

/** A photo or signature kept until uploaded; keyed by the SHA-256 of its bytes. */
export interface Attachment {
  hash: string
  blob: Blob
  mime: string
  kind: 'photo' | 'signature'
  uploaded: 0 | 1
  createdAt: string
}

/** The last good answer to a query, shown when the network is off. */
export interface CachedQuery {
  key: string
  data: unknown
  at: string
}

/** A value sync could not merge: the therapist picks which one stays. */
export interface Conflict {
  id: string
  recordType: string
  recordId: string
  field: string
  mine: unknown
  theirs: unknown
  at: string
}

/** A row of the user's partial view, as the server's syncPull last sent it. */
export interface SyncedRecord {
  key: string // `${entity}:${id}`
  entity: string
  id: string
  data: Record<string, unknown>
}

export interface MetaRow {
  key: string
  value: unknown
}

export class BedsideDB extends Dexie {
  outbox!: Table<OutboxMutation, number>
  rejected!: Table<RejectedMutation, number>
  attachments!: Table<Attachment, string>
  cache!: Table<CachedQuery, string>
  conflicts!: Table<Conflict, string>
  meta!: Table<MetaRow, string>
  records!: Table<SyncedRecord, string>

  constructor(name = 'bedside') {
    super(name)
    this.version(1).stores({
      outbox: 'id',
      rejected: 'id',
      attachments: 'hash, uploaded',
      cache: 'key',
      conflicts: 'id',
      meta: 'key',
    })
    this.version(2).stores({ records: 'key, entity' })
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await this.meta.get(key))?.value as T | undefined
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await this.meta.put({ key, value })
  }
}

let shared: BedsideDB | null = null

/** The one database of this page or service worker. */
export function db(): BedsideDB {
  shared ??= new BedsideDB()
  return shared
}

/** Tests swap in a fresh database. */
export function useDatabase(instance: BedsideDB): void {
  shared = instance
}
