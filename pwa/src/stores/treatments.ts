// Therapist data: the day's worklist (cached, so the PAD opens it offline), and the
// bedside record saved as named mutations in the outbox (sync protocol, issue 6).
import { gql } from '../api/graphql'
import { CALL_NEXT, DAY_QUEUE, MY_WORKLIST, RESOLVE_CONFLICT, SYNC_CONFLICTS } from '../api/operations'
import { cacheThenNetwork, readCache, writeCache, type Cached } from '../offline/cache'
import { db } from '../offline/db'
import { enqueue } from '../offline/outbox'
import { keepAttachment } from '../offline/attachments'
import { recordedAppointments } from '../offline/pull'

export interface TemplateField {
  name: string
  label: string
  type: 'text' | 'int' | 'number' | 'choice'
  required?: boolean
  min?: number
  max?: number
  max_length?: number
  options?: string[]
}

export interface WorklistItem {
  id: string
  status: string
  startsAt: string
  endsAt: string
  room: string
  version: number
  patient: { id: string; name: string }
  order: { id: string; paymentStatus: string; remainingSessions: number } | null
  item: {
    id: string
    code: string
    name: string
    nameEn: string
    durationMinutes: number
    notes: string
    requiresConsent: boolean
    recordTemplate: TemplateField[]
    assessmentTemplate: TemplateField[]
    currentConsent: { id: string; title: string; body: string; sha256: string } | null
  }
}

export function loadWorklist(date: string, show: (r: Cached<WorklistItem[]>) => void): Promise<void> {
  return cacheThenNetwork(`worklist:${date}`, async () => {
    const { myWorklist } = await gql<{ myWorklist: WorklistItem[] }>(MY_WORKLIST, { date })
    // Each appointment is also kept alone, so its record opens offline from a deep link.
    for (const appointment of myWorklist) await writeCache(`appointment:${appointment.id}`, appointment)
    return myWorklist
  }, show)
}

export async function cachedAppointment(id: string): Promise<WorklistItem | null> {
  return (await readCache<WorklistItem>(`appointment:${id}`))?.data ?? null
}

/** Appointment ids with edits still in the outbox, those checked in on this device, and
 * those the server has a treatment record for (as of the last pull). */
export async function localState(): Promise<{ unsent: Set<string>; checkedIn: Set<string>; recorded: Set<string> }> {
  const unsent = new Set<string>()
  const checkedIn = new Set<string>()
  for (const m of await db().outbox.toArray()) {
    const id = String(m.args.appointmentId ?? '')
    if (!id) continue
    unsent.add(id)
    if (m.name === 'checkIn') checkedIn.add(id)
  }
  return { unsent, checkedIn, recorded: await recordedAppointments() }
}

export function checkIn(appointmentId: string): Promise<number> {
  return enqueue('checkIn', { appointmentId: Number(appointmentId) })
}

export async function callNext(queueKey: string): Promise<{ number: number; patient: { name: string } } | null> {
  return (await gql<{ callNext: { number: number; patient: { name: string } } | null }>(CALL_NEXT, { queueKey })).callNext
}

export function queueKeyOf(appointment: WorklistItem, therapistId: string): string {
  return appointment.room ? `room:${appointment.room}` : `therapist:${therapistId}`
}

export interface BedsideRecord {
  appointment: WorklistItem
  record: Record<string, unknown>
  assessment: Record<string, unknown>
  signature: Blob | null
  signerName: string
  photos: { blob: Blob; phase: PhotoPhase }[]
}

/** 采集影像: a photo is taken before or after the treatment. */
export type PhotoPhase = 'before' | 'after'
export const PHOTO_PHASES: PhotoPhase[] = ['before', 'after']

/**
 * Save the bedside record on the device: the signature and photos into IndexedDB, then
 * the named mutations into the outbox, in the order the server applies them (consent
 * first, then the record, then the assessment). Returns the outbox ids.
 */
export async function saveBedsideRecord(input: BedsideRecord): Promise<number[]> {
  const appointmentId = Number(input.appointment.id)
  const photos: { sha256: string; phase: PhotoPhase }[] = []
  for (const photo of input.photos) photos.push({ sha256: await keepAttachment(photo.blob, 'photo'), phase: photo.phase })
  const ids: number[] = []
  const consent = input.appointment.item.currentConsent
  if (input.signature && consent) {
    const signatureSha256 = await keepAttachment(input.signature, 'signature')
    ids.push(
      await enqueue(
        'signConsent',
        { appointmentId, consentTextId: Number(consent.id), textSha256: consent.sha256, signatureSha256, signerName: input.signerName },
        [signatureSha256],
      ),
    )
  }
  ids.push(await enqueue('recordTreatment', { appointmentId, base: {}, changes: input.record }))
  // Each photo joins the record once its upload is done (the server waits for it).
  for (const photo of photos) ids.push(await enqueue('attachPhoto', { appointmentId, photoSha256: photo.sha256, phase: photo.phase }, [photo.sha256]))
  if (Object.keys(input.assessment).length) ids.push(await enqueue('saveAssessment', { appointmentId, base: {}, changes: input.assessment }))
  return ids
}

/** A field's problem in the user's words, or '' when the value is fine. */
export function validateField(field: TemplateField, value: unknown, messages: { required: string; range: (min?: number, max?: number) => string }): string {
  const empty = value === undefined || value === null || value === ''
  if (empty) return field.required ? messages.required : ''
  if (field.type === 'int' || field.type === 'number') {
    const n = Number(value)
    if (!Number.isFinite(n) || (field.type === 'int' && !Number.isInteger(n))) return messages.range(field.min, field.max)
    if ((field.min !== undefined && n < field.min) || (field.max !== undefined && n > field.max)) return messages.range(field.min, field.max)
  }
  if (field.type === 'choice' && field.options && !field.options.includes(String(value))) return messages.required
  if (field.max_length && String(value).length > field.max_length) return messages.range(0, field.max_length)
  return ''
}

/** Form values in the types the template declares (numbers as numbers). */
export function typedValues(fields: TemplateField[], values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const field of fields) {
    const value = values[field.name]
    if (value === undefined || value === '') continue
    out[field.name] = field.type === 'int' || field.type === 'number' ? Number(value) : value
  }
  return out
}

export interface ServerConflict {
  id: string
  entity: string
  entityId: number
  field: string
  baseValue: unknown
  losingValue: unknown
  winningValue: unknown
  clientWon: boolean
  status: string
  createdAt: string
}

export function loadConflicts(show: (r: Cached<ServerConflict[]>) => void): Promise<void> {
  return cacheThenNetwork('syncConflicts', async () => (await gql<{ syncConflicts: ServerConflict[] }>(SYNC_CONFLICTS)).syncConflicts, show)
}

export function resolveConflict(id: string, resolution: 'KEEP_SERVER' | 'USE_MINE'): Promise<unknown> {
  return gql(RESOLVE_CONFLICT, { id, resolution })
}

export interface QueueEntry {
  id: string
  number: number
  position: number
  status: string
  patient: { name: string }
  appointment: { id: string }
}

export function loadQueue(queueKey: string, date: string, show: (r: Cached<QueueEntry[]>) => void): Promise<void> {
  return cacheThenNetwork(`queue:${queueKey}:${date}`, async () => (await gql<{ dayQueue: QueueEntry[] }>(DAY_QUEUE, { queueKey, date })).dayQueue, show)
}
