// syncPull: what changed in this user's partial view since the cookie. Puts and deletes go
// into the `records` table; a patient or appointment the user may no longer see also
// leaves every cached screen, so it is gone from the device after the next pull.
import { db, type SyncedRecord } from './db'

export interface PullResponse {
  cookie: string
  reset: boolean
  puts: { entity: string; id: string; data: Record<string, unknown> }[]
  deletes: { entity: string; id: string }[]
}

export type Puller = (cookie: string | null, clientGroupId: string | null) => Promise<PullResponse>

interface CachedAppointment {
  id: string
  patient?: { id: string }
}

/** Drop deleted appointments and patients from the cached worklists and appointments. */
async function forget(appointments: Set<string>, patients: Set<string>): Promise<void> {
  if (!appointments.size && !patients.size) return
  const store = db()
  const gone = (a: CachedAppointment): boolean => appointments.has(String(a.id)) || (!!a.patient && patients.has(String(a.patient.id)))
  await store.transaction('rw', store.cache, async () => {
    for (const row of await store.cache.toArray()) {
      if (row.key.startsWith('worklist:') && Array.isArray(row.data)) {
        const kept = (row.data as CachedAppointment[]).filter((a) => !gone(a))
        if (kept.length !== (row.data as unknown[]).length) await store.cache.put({ ...row, data: kept })
      } else if (row.key.startsWith('appointment:') && gone(row.data as CachedAppointment)) {
        await store.cache.delete(row.key)
      }
    }
  })
}

export async function pullChanges(pull: Puller): Promise<{ puts: number; deletes: number }> {
  const store = db()
  const cookie = (await store.getMeta<string>('pullCookie')) ?? null
  const clientGroupId = (await store.getMeta<string>('clientGroupId')) ?? null
  const response = await pull(cookie, clientGroupId)
  const deletedAppointments = new Set<string>()
  const deletedPatients = new Set<string>()
  await store.transaction('rw', store.records, store.meta, async () => {
    if (response.reset) await store.records.clear()
    const rows: SyncedRecord[] = response.puts.map((p) => ({ key: `${p.entity}:${p.id}`, entity: p.entity, id: String(p.id), data: p.data }))
    await store.records.bulkPut(rows)
    await store.records.bulkDelete(response.deletes.map((d) => `${d.entity}:${d.id}`))
    for (const d of response.deletes) {
      if (d.entity === 'appointment') deletedAppointments.add(String(d.id))
      if (d.entity === 'patient') deletedPatients.add(String(d.id))
    }
    await store.setMeta('pullCookie', response.cookie)
  })
  await forget(deletedAppointments, deletedPatients)
  return { puts: response.puts.length, deletes: response.deletes.length }
}

/** Appointment ids with a treatment record on the server (from the last pull). */
export async function recordedAppointments(): Promise<Set<string>> {
  const rows = await db().records.where('entity').equals('treatment_record').toArray()
  return new Set(rows.map((r) => String(r.data.appointment_id ?? '')).filter(Boolean))
}
