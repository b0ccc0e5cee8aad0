import { beforeEach, describe, expect, it } from 'vitest'
import { BedsideDB, db, useDatabase } from '../src/offline/db'
import { pending } from '../src/offline/outbox'
import { archiveTreatment, bedsideState, checkIn, countActions, localState, saveBedsideRecord, startTreatment, typedValues, validateField, type TemplateField, type WorklistItem } from '../src/stores/treatments'

let n = 0
beforeEach(() => useDatabase(new BedsideDB(`treatments-test-${++n}`)))

const minutes: TemplateField = { name: 'minutes', label: '时长 / minutes', type: 'int', min: 5, max: 120, required: true }
const modality: TemplateField = { name: 'modality', label: '方式 / modality', type: 'choice', options: ['中频 IF', '超声 ultrasound'], required: true }
const note: TemplateField = { name: 'note', label: '备注 / note', type: 'text', max_length: 5 }
const messages = { required: 'required', range: (min?: number, max?: number) => `range ${min}-${max}` }

const appointment: WorklistItem = {
  id: '7',
  status: 'booked',
  startsAt: '2025-03-03T00:00:00Z',
  endsAt: '2025-03-03T00:30:00Z',
  room: 'Physio 1',
  version: 1,
  patient: { id: '5', name: '陈志强' },
  order: { id: '9', paymentStatus: 'PAID', remainingSessions: 4 },
  item: {
    id: '2', code: 'PHYSIO', name: '理疗', nameEn: 'Physiotherapy', durationMinutes: 30, notes: '', requiresConsent: true,
    recordTemplate: [modality, minutes, note], assessmentTemplate: [],
    currentConsent: { id: '3', title: 'consent', body: 'text', sha256: 'a'.repeat(64) },
  },
}

describe('record form validation', () => {
  it('checks required fields, ranges, integers, choices and lengths', () => {
    expect(validateField(minutes, '', messages)).toBe('required')
    expect(validateField(minutes, '4', messages)).toBe('range 5-120')
    expect(validateField(minutes, '30.5', messages)).toBe('range 5-120')
    expect(validateField(minutes, '30', messages)).toBe('')
    expect(validateField(modality, 'laser', messages)).toBe('required')
    expect(validateField(modality, '中频 IF', messages)).toBe('')
    expect(validateField(note, '', messages)).toBe('')
    expect(validateField(note, 'too long', messages)).toBe('range 0-5')
  })

  it('sends numbers as numbers and leaves out empty fields', () => {
    expect(typedValues([modality, minutes, note], { modality: '中频 IF', minutes: '30', note: '' })).toEqual({ modality: '中频 IF', minutes: 30 })
  })
})

describe('saveBedsideRecord', () => {
  it('queues consent, record and assessment in order, with the signature kept for upload', async () => {
    const signature = new Blob([new Uint8Array([137, 80, 78, 71])], { type: 'image/png' })
    const ids = await saveBedsideRecord({ appointment, record: { minutes: 30 }, assessment: { pain_score: 3 }, signature, signerName: '陈志强', photos: [] })
    expect(ids).toEqual([1, 2, 3])
    const queued = await pending()
    expect(queued.map((m) => m.name)).toEqual(['signConsent', 'recordTreatment', 'saveAssessment'])
    const hash = queued[0].args.signatureSha256 as string
    expect(queued[0].attachments).toEqual([hash])
    expect(queued[0].args).toMatchObject({ appointmentId: 7, consentTextId: 3, textSha256: 'a'.repeat(64), signerName: '陈志强' })
    expect(queued[1].args).toEqual({ appointmentId: 7, base: {}, changes: { minutes: 30 } })
    expect((await db().attachments.get(hash))?.kind).toBe('signature')
    const state = await localState()
    expect([...state.unsent]).toEqual(['7'])
    expect(state.checkedIn.size).toBe(0)
  })

  it('queues each photo to join the record after its upload, with its phase', async () => {
    const before = new Blob([new Uint8Array([1, 2, 3])], { type: 'image/jpeg' })
    const after = new Blob([new Uint8Array([4, 5, 6])], { type: 'image/jpeg' })
    await saveBedsideRecord({ appointment, record: { minutes: 30 }, assessment: {}, signature: null, signerName: '', photos: [{ blob: before, phase: 'before' }, { blob: after, phase: 'after' }] })
    const queued = await pending()
    expect(queued.map((m) => m.name)).toEqual(['recordTreatment', 'attachPhoto', 'attachPhoto'])
    expect(queued.slice(1).map((m) => m.args.phase)).toEqual(['before', 'after'])
    for (const photo of queued.slice(1)) {
      expect(photo.args).toMatchObject({ appointmentId: 7 })
      expect(photo.attachments).toEqual([photo.args.photoSha256])
      expect((await db().attachments.get(photo.args.photoSha256 as string))?.kind).toBe('photo')
    }
    expect(queued[1].args.photoSha256).not.toEqual(queued[2].args.photoSha256)
  })

  it('queues no consent without a signature and no assessment without answers', async () => {
    await saveBedsideRecord({ appointment, record: { minutes: 30 }, assessment: {}, signature: null, signerName: '', photos: [] })
    expect((await pending()).map((m) => m.name)).toEqual(['recordTreatment'])
  })
})

describe('a second save of the same record', () => {
  it('sends only what changed, against what the first save wrote, and removes a dropped photo', async () => {
    const photo = new Blob([new Uint8Array([9, 9, 9])], { type: 'image/jpeg' })
    await saveBedsideRecord({ appointment, record: { modality: '中频 IF', minutes: 30 }, assessment: {}, signature: null, signerName: '', photos: [{ blob: photo, phase: 'before' }] })
    const [, attach] = await pending()
    const hash = attach.args.photoSha256 as string
    const first = await bedsideState('7')
    expect(first.draft).toMatchObject({ started: true, record: { modality: '中频 IF', minutes: 30 }, photos: [{ hash, phase: 'before' }] })
    await db().outbox.clear()
    await saveBedsideRecord({ appointment, record: { modality: '中频 IF', minutes: 25 }, assessment: {}, signature: null, signerName: '', photos: [] })
    const queued = await pending()
    expect(queued.map((m) => m.name)).toEqual(['recordTreatment', 'removePhoto'])
    expect(queued[0].args).toEqual({ appointmentId: 7, base: { modality: '中频 IF', minutes: 30 }, changes: { minutes: 25 } })
    expect(queued[1].args).toEqual({ appointmentId: 7, photoSha256: hash })
  })
})

describe('pending actions', () => {
  it('count what the nurse did, not the mutations sending it', async () => {
    await checkIn('7')
    await startTreatment('7')
    const signature = new Blob([new Uint8Array([137, 80, 78, 71])], { type: 'image/png' })
    await saveBedsideRecord({ appointment, record: { minutes: 30 }, assessment: { pain_score: 3 }, signature, signerName: '陈志强', photos: [] })
    await archiveTreatment('7')
    const queued = await pending()
    expect(queued.length).toBe(6)
    expect(countActions(queued)).toBe(4)
    const state = await localState()
    expect(state.pending.get('7')).toEqual(['checkIn', 'start', 'record', 'archive'])
    expect((await bedsideState('7')).archivePending).toBe(true)
  })
})
