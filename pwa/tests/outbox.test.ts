import { beforeEach, describe, expect, it } from 'vitest'
import { BedsideDB, db, useDatabase } from '../src/offline/db'
import { clientIds, enqueue, pending, pendingCount, pushOutbox } from '../src/offline/outbox'
import { keepAttachment } from '../src/offline/attachments'
import { SyncServer } from './server'

let n = 0
let name = ''
beforeEach(() => {
  name = `outbox-test-${++n}`
  useDatabase(new BedsideDB(name))
})

describe('enqueue', () => {
  it('numbers mutations consecutively and keeps them across a reload', async () => {
    expect(await enqueue('recordTreatment', { appointmentId: '1' })).toBe(1)
    expect(await enqueue('saveAssessment', { appointmentId: '1', painScore: 3 })).toBe(2)
    const before = await clientIds()
    db().close()
    useDatabase(new BedsideDB(name)) // the page reloads: a new connection to the same database
    expect((await pending()).map((m) => [m.id, m.name])).toEqual([
      [1, 'recordTreatment'],
      [2, 'saveAssessment'],
    ])
    expect(await clientIds()).toEqual(before)
    expect(await enqueue('checkIn', { appointmentId: '2' })).toBe(3)
  })

  it('never reuses an id after the queue is drained', async () => {
    const server = new SyncServer()
    await enqueue('a', {})
    await pushOutbox(server.push)
    expect(await enqueue('b', {})).toBe(2)
  })
})

describe('pushOutbox', () => {
  it('sends everything in order and empties the queue', async () => {
    const server = new SyncServer()
    for (let i = 0; i < 3; i++) await enqueue('recordTreatment', { i })
    const outcome = await pushOutbox(server.push)
    expect(outcome).toMatchObject({ pushed: 3, rejected: 0, remaining: 0 })
    expect(server.applied.map((m) => m.id)).toEqual([1, 2, 3])
    expect(await pendingCount()).toBe(0)
  })

  it('keeps the queue when the network is down', async () => {
    const server = new SyncServer()
    server.down = true
    await enqueue('recordTreatment', { i: 1 })
    const outcome = await pushOutbox(server.push)
    expect(outcome.error?.code).toBe('NETWORK')
    expect(outcome.remaining).toBe(1)
    expect(server.applied).toEqual([])
    server.down = false
    expect((await pushOutbox(server.push)).pushed).toBe(1)
    expect(server.applied).toHaveLength(1)
  })

  it('applies exactly once when the acknowledgement is lost and the batch is pushed again', async () => {
    const server = new SyncServer()
    await enqueue('recordTreatment', { i: 1 })
    await enqueue('recordTreatment', { i: 2 })
    server.loseNextAck = true
    const first = await pushOutbox(server.push)
    expect(first.error?.code).toBe('NETWORK')
    expect(await pendingCount()).toBe(2) // the device does not know it arrived
    const second = await pushOutbox(server.push)
    expect(second).toMatchObject({ pushed: 2, remaining: 0 })
    expect(server.applied.map((m) => m.args.i)).toEqual([1, 2])
  })

  it('moves a rejected mutation aside and carries on with the rest', async () => {
    const server = new SyncServer()
    await enqueue('recordTreatment', { i: 1 })
    await enqueue('poison', { i: 2 })
    await enqueue('recordTreatment', { i: 3 })
    const outcome = await pushOutbox(server.push)
    expect(outcome).toMatchObject({ pushed: 3, rejected: 1, remaining: 0 })
    expect(server.applied.map((m) => m.args.i)).toEqual([1, 3])
    const rejected = await db().rejected.toArray()
    expect(rejected).toMatchObject([{ id: 2, name: 'poison', code: 'VALIDATION', reason: 'bad args' }])
  })

  it('keeps everything when the session expired, for a replay after login', async () => {
    const server = new SyncServer()
    server.expired = true
    await enqueue('recordTreatment', { i: 1 })
    const outcome = await pushOutbox(server.push)
    expect(outcome.error?.code).toBe('UNAUTHENTICATED')
    expect(await pendingCount()).toBe(1)
    server.expired = false
    await pushOutbox(server.push)
    expect(server.applied).toHaveLength(1)
  })

  it('serializes concurrent pushes (page and service worker at once)', async () => {
    const server = new SyncServer()
    for (let i = 0; i < 5; i++) await enqueue('recordTreatment', { i })
    const [a, b] = await Promise.all([pushOutbox(server.push), pushOutbox(server.push)])
    expect(server.maxInFlight).toBe(1)
    expect(a.pushed + b.pushed).toBe(5)
    expect(server.applied).toHaveLength(5)
  })

  it('pushes a long queue in batches', async () => {
    const server = new SyncServer()
    await db().transaction('rw', db().outbox, db().meta, async () => {
      for (let i = 1; i <= 250; i++) await db().outbox.add({ id: i, name: 'recordTreatment', args: { i }, clientTime: new Date().toISOString() })
      await db().setMeta('lastQueuedId', 250)
    })
    const outcome = await pushOutbox(server.push)
    expect(outcome).toMatchObject({ pushed: 250, remaining: 0 })
    expect(server.requests).toBe(3)
    expect(server.applied.map((m) => m.id)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1))
  })

  it('stops at a gap the server reports and retries later', async () => {
    const server = new SyncServer()
    await enqueue('recordTreatment', { i: 1 })
    await enqueue('recordTreatment', { i: 2 })
    await db().outbox.delete(1) // as if id 1 had been lost on the device
    const outcome = await pushOutbox(server.push)
    expect(outcome).toMatchObject({ pushed: 0, remaining: 1 })
    expect(server.applied).toEqual([])
  })
})

describe('attachments', () => {
  it('uploads a signature once, before the mutation that references it', async () => {
    const server = new SyncServer()
    const uploads: string[] = []
    const blob = new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' })
    const hash = await keepAttachment(blob, 'signature')
    expect(await keepAttachment(blob, 'signature')).toBe(hash) // same bytes, same key
    expect(hash).toMatch(/^[0-9a-f]{64}$/)
    await enqueue('signConsent', { signatureHash: hash }, [hash])
    await enqueue('recordTreatment', { signatureHash: hash }, [hash])
    const outcome = await pushOutbox(server.push, async (a) => {
      expect(server.applied).toHaveLength(0)
      uploads.push(a.hash)
    })
    expect(outcome.pushed).toBe(2)
    expect(uploads).toEqual([hash])
    expect((await db().attachments.get(hash))?.uploaded).toBe(1)
  })

  it('pushes nothing that references an attachment still waiting to upload', async () => {
    const server = new SyncServer()
    const hash = await keepAttachment(new Blob(['photo']), 'photo')
    await enqueue('recordTreatment', { photos: [hash] }, [hash])
    const { ApiError } = await import('../src/api/errors')
    const outcome = await pushOutbox(server.push, async () => {
      throw new ApiError('NETWORK', 'offline')
    })
    expect(outcome.error?.code).toBe('NETWORK')
    expect(server.requests).toBe(0)
    expect(await pendingCount()).toBe(1)
    expect((await db().attachments.get(hash))?.blob).toBeDefined()
  })
})
