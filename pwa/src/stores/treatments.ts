// Therapist data: the day's worklist (cached, so the PAD opens it offline), and the
// bedside record saved as named mutations in the outbox (sync protocol, issue 6).
import { gql } from '../api/graphql'
import { CALL_NEXT, DAY_QUEUE, MY_WORKLIST, REGISTER_WALK_IN, RESOLVE_CONFLICT, SYNC_CONFLICTS, WALK_IN_ORDERS, WALK_IN_PATIENTS } from '../api/operations'
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
  receiptNo?: string
  patient: { id: string; name: string; mrn?: string }
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

/** The appointment a scanned code names: the wristband's MRN or the slip's receipt number. */
export function appointmentForCode(items: WorklistItem[], code: string): WorklistItem | null {
  const wanted = code.trim().toUpperCase()
  const open = items.filter((a) => a.status !== 'cancelled' && a.status !== 'noshow')
  return (
    open.find((a) => (a.receiptNo ?? '').toUpperCase() === wanted) ??
    open.find((a) => (a.patient.mrn ?? '').toUpperCase() === wanted && a.status !== 'fulfilled') ??
    open.find((a) => (a.patient.mrn ?? '').toUpperCase() === wanted) ??
    null
  )
}

export async function cachedAppointment(id: string): Promise<WorklistItem | null> {
  return (await readCache<WorklistItem>(`appointment:${id}`))?.data ?? null
}

/** What the nurse did, as she would name it: one bedside save is one action, however
 * many mutations it takes to send it. */
export type PendingKind = 'checkIn' | 'start' | 'record' | 'archive'
const KINDS: Record<string, PendingKind> = {
  checkIn: 'checkIn',
  startTreatment: 'start',
  signConsent: 'record',
  recordTreatment: 'record',
  attachPhoto: 'record',
  removePhoto: 'record',
  saveAssessment: 'record',
  archiveTreatment: 'archive',
}
export const PENDING_KINDS: PendingKind[] = ['checkIn', 'start', 'record', 'archive']

/** The action a queued mutation belongs to (`kind:appointment`), or its own id. */
export function actionOf(m: { id: number; name: string; args: Record<string, unknown> }): string {
  const appointment = m.args.appointmentId
  const kind = KINDS[m.name]
  return kind && appointment !== undefined ? `${kind}:${appointment}` : `mutation:${m.id}`
}

/** How many actions wait to be sent. */
export function countActions(mutations: { id: number; name: string; args: Record<string, unknown> }[]): number {
  return new Set(mutations.map(actionOf)).size
}

/** Appointment ids with edits still in the outbox (and which actions), those checked in
 * on this device, and those the server has a treatment record for (as of the last pull). */
export async function localState(): Promise<{ unsent: Set<string>; checkedIn: Set<string>; recorded: Set<string>; pending: Map<string, PendingKind[]>; records: Map<string, ServerRecord> }> {
  const unsent = new Set<string>()
  const checkedIn = new Set<string>()
  const kinds = new Map<string, Set<PendingKind>>()
  for (const m of await db().outbox.toArray()) {
    const id = String(m.args.appointmentId ?? '')
    if (!id) continue
    unsent.add(id)
    if (m.name === 'checkIn') checkedIn.add(id)
    const kind = KINDS[m.name]
    if (kind) kinds.set(id, (kinds.get(id) ?? new Set()).add(kind))
  }
  const pending = new Map([...kinds].map(([id, set]) => [id, PENDING_KINDS.filter((k) => set.has(k))]))
  return { unsent, checkedIn, recorded: await recordedAppointments(), pending, records: await serverRecords() }
}

/** The treatment record of each appointment as the server last sent it (syncPull). */
export interface ServerRecord {
  id: string
  appointmentId: string
  status: string
  version: number
  data: Record<string, unknown>
}

export async function serverRecords(): Promise<Map<string, ServerRecord>> {
  const rows = await db().records.where('entity').equals('treatment_record').toArray()
  const out = new Map<string, ServerRecord>()
  for (const r of rows) {
    const d = r.data as { id: number; appointment_id: number; status: string; version: number; data?: Record<string, unknown>; deleted_at?: string | null }
    if (d.deleted_at) continue
    out.set(String(d.appointment_id), { id: String(d.id), appointmentId: String(d.appointment_id), status: d.status, version: d.version, data: d.data ?? {} })
  }
  return out
}

/** The bedside work on one appointment as this device saved it. */
export interface BedsideDraft {
  appointmentId: string
  started: boolean
  archived: boolean
  record: Record<string, unknown>
  assessment: Record<string, unknown>
  photos: { hash: string; phase: PhotoPhase }[]
  signature: string | null
  signerName: string
  savedAt: string
}

/** What is known of an appointment's session: this device's draft and the server's record,
 * assessment and signature (from the last pull). */
export interface BedsideState {
  draft: BedsideDraft | null
  record: ServerRecord | null
  assessment: Record<string, unknown> | null
  signedBy: string | null
  /** An archive of this device's still waits in the outbox. */
  archivePending: boolean
}

export async function bedsideState(appointmentId: string): Promise<BedsideState> {
  const draft = (await readCache<BedsideDraft>(`bedside:${appointmentId}`))?.data ?? null
  const record = (await serverRecords()).get(String(appointmentId)) ?? null
  let assessment: Record<string, unknown> | null = null
  let signedBy: string | null = null
  if (record) {
    for (const r of await db().records.where('entity').anyOf('assessment_record', 'consent_signature').toArray()) {
      const d = r.data as { record_id: number; data?: Record<string, unknown>; signer_name?: string; deleted_at?: string | null }
      if (String(d.record_id) !== record.id || d.deleted_at) continue
      if (r.entity === 'assessment_record') assessment = d.data ?? {}
      else signedBy = d.signer_name ?? ''
    }
  }
  const archivePending = (await db().outbox.toArray()).some((m) => m.name === 'archiveTreatment' && String(m.args.appointmentId) === String(appointmentId))
  return { draft, record, assessment, signedBy, archivePending }
}

async function keepDraft(appointmentId: string, change: Partial<BedsideDraft>): Promise<BedsideDraft> {
  const previous = (await readCache<BedsideDraft>(`bedside:${appointmentId}`))?.data
  const draft: BedsideDraft = {
    appointmentId,
    started: false,
    archived: false,
    record: {},
    assessment: {},
    photos: [],
    signature: null,
    signerName: '',
    ...previous,
    ...change,
    savedAt: new Date().toISOString(),
  }
  await writeCache(`bedside:${appointmentId}`, draft)
  return draft
}

/** 开始治疗: the server re-checks the payment and opens the one record of the appointment. */
export async function startTreatment(appointmentId: string): Promise<number> {
  const id = await enqueue('startTreatment', { appointmentId: Number(appointmentId) })
  await keepDraft(appointmentId, { started: true })
  return id
}

/** 完成并归档: the appointment is fulfilled and one session of the order used. */
export async function archiveTreatment(appointmentId: string): Promise<number> {
  const id = await enqueue('archiveTreatment', { appointmentId: Number(appointmentId) })
  await keepDraft(appointmentId, { started: true, archived: true })
  return id
}

/** A photo or signature this device kept, to show again. */
export async function keptBlob(hash: string): Promise<Blob | null> {
  return (await db().attachments.get(hash))?.blob ?? null
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
  /** The photos the record has now: new ones as blobs, saved ones by their hash. */
  photos: { blob?: Blob; hash?: string; phase: PhotoPhase }[]
}

/** 采集影像: a photo is taken before or after the treatment. */
export type PhotoPhase = 'before' | 'after'
export const PHOTO_PHASES: PhotoPhase[] = ['before', 'after']

function changed(previous: Record<string, unknown>, now: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of new Set([...Object.keys(previous), ...Object.keys(now)])) {
    if (previous[key] !== now[key]) out[key] = now[key] ?? null
  }
  return out
}

/**
 * Save the bedside record on the device: the signature and photos into IndexedDB, then
 * the named mutations into the outbox, in the order the server applies them (consent
 * first, then the record, photos added and removed, then the assessment). A second save
 * sends only what changed since the first, against the values it saw. Returns the outbox ids.
 */
export async function saveBedsideRecord(input: BedsideRecord): Promise<number[]> {
  const appointmentId = Number(input.appointment.id)
  const previous = (await readCache<BedsideDraft>(`bedside:${input.appointment.id}`))?.data ?? null
  const photos: { hash: string; phase: PhotoPhase }[] = []
  for (const photo of input.photos) photos.push({ hash: photo.hash ?? (await keepAttachment(photo.blob as Blob, 'photo')), phase: photo.phase })
  const ids: number[] = []
  const consent = input.appointment.item.currentConsent
  let signature = previous?.signature ?? null
  if (input.signature && consent) {
    signature = await keepAttachment(input.signature, 'signature')
    ids.push(
      await enqueue(
        'signConsent',
        { appointmentId, consentTextId: Number(consent.id), textSha256: consent.sha256, signatureSha256: signature, signerName: input.signerName },
        [signature],
      ),
    )
  }
  const base = previous?.record ?? {}
  const recordChanges = previous ? changed(base, input.record) : input.record
  if (!previous || Object.keys(recordChanges).length) ids.push(await enqueue('recordTreatment', { appointmentId, base, changes: recordChanges }))
  // Each photo joins the record once its upload is done (the server waits for it).
  const had = new Set((previous?.photos ?? []).map((p) => p.hash))
  const has = new Set(photos.map((p) => p.hash))
  for (const photo of photos) {
    if (!had.has(photo.hash)) ids.push(await enqueue('attachPhoto', { appointmentId, photoSha256: photo.hash, phase: photo.phase }, [photo.hash]))
  }
  for (const photo of previous?.photos ?? []) {
    if (!has.has(photo.hash)) ids.push(await enqueue('removePhoto', { appointmentId, photoSha256: photo.hash }))
  }
  const assessmentBase = previous?.assessment ?? {}
  const assessmentChanges = previous ? changed(assessmentBase, input.assessment) : input.assessment
  if (Object.keys(assessmentChanges).length) ids.push(await enqueue('saveAssessment', { appointmentId, base: assessmentBase, changes: assessmentChanges }))
  await keepDraft(input.appointment.id, { started: true, record: input.record, assessment: input.assessment, photos, signature, signerName: input.signerName })
  return ids
}

/** A field's problem in the user's words, or '' when the value is fine. */
export function validateField(field: TemplateField, value: unknown, messages: { required: string; choose?: string; range: (min?: number, max?: number) => string }): string {
  const empty = value === undefined || value === null || value === ''
  if (empty) return field.required ? (field.type === 'choice' ? (messages.choose ?? messages.required) : messages.required) : ''
  if (field.type === 'int' || field.type === 'number') {
    const n = Number(value)
    if (!Number.isFinite(n) || (field.type === 'int' && !Number.isInteger(n))) return messages.range(field.min, field.max)
    if ((field.min !== undefined && n < field.min) || (field.max !== undefined && n > field.max)) return messages.range(field.min, field.max)
  }
  if (field.type === 'choice' && field.options && !field.options.includes(String(value))) return messages.choose ?? messages.required
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

/** The day's queue, treated patients included, one row per appointment. */
export function loadQueue(queueKey: string, date: string, show: (r: Cached<QueueEntry[]>) => void): Promise<void> {
  return cacheThenNetwork(
    `queue:${queueKey}:${date}`,
    async () => {
      const { dayQueue } = await gql<{ dayQueue: QueueEntry[] }>(DAY_QUEUE, { queueKey, date, includeDone: true })
      const seen = new Set<string>()
      return dayQueue.filter((e) => !seen.has(e.appointment.id) && !!seen.add(e.appointment.id))
    },
    show,
  )
}

export interface WalkInPatient {
  id: string
  name: string
  mrn: string
  gender: string
  birthDate: string | null
}

export interface WalkInOrder {
  id: string
  remainingSessions: number
  paymentStatus: string
  item: { code: string; name: string; nameEn: string }
}

/** 未预约患者: find the patient (name or MRN), pick his order, treat him now. Online only. */
export async function searchPatients(search: string): Promise<WalkInPatient[]> {
  return (await gql<{ patients: WalkInPatient[] }>(WALK_IN_PATIENTS, { search })).patients
}

export async function ordersOf(patientId: string): Promise<WalkInOrder[]> {
  return (await gql<{ treatmentOrders: WalkInOrder[] }>(WALK_IN_ORDERS, { patientId })).treatmentOrders
}

export async function registerWalkIn(orderId: string, room: string, idempotencyKey: string): Promise<{ id: string; startsAt: string }> {
  return (await gql<{ registerWalkIn: { id: string; startsAt: string } }>(REGISTER_WALK_IN, { orderId, room, idempotencyKey })).registerWalkIn
}
