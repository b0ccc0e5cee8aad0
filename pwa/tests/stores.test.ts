import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BedsideDB, db, useDatabase } from '../src/offline/db'
import { cacheThenNetwork, type Cached } from '../src/offline/cache'
import { ApiError } from '../src/api/errors'
import { login, logout, restoreSession, session } from '../src/stores/session'
import { errorText, i18n } from '../src/i18n'
import { screenFor } from '../src/notice-links'
import { shanghaiDate, formatDateTime, formatDateTimeYear, formatSpan, fromLocalInput, toLocalInput } from '../src/format'

let n = 0
const realFetch = globalThis.fetch
beforeEach(() => useDatabase(new BedsideDB(`stores-test-${++n}`)))
afterEach(() => {
  globalThis.fetch = realFetch
})

/** A GraphQL endpoint answering login and me like the server does. */
function fakeGraphQL(users: Record<string, { token: string; me: object }>): void {
  globalThis.fetch = (async (_url: string, init: RequestInit) => {
    const { query, variables } = JSON.parse(String(init.body))
    const headers = init.headers as Record<string, string>
    if (query.includes('login(')) {
      const user = users[variables.username]
      if (!user || variables.password !== 'pw') {
        return new Response(JSON.stringify({ data: null, errors: [{ message: '用户名或密码错误 / wrong', extensions: { code: 'UNAUTHENTICATED' } }] }))
      }
      return new Response(JSON.stringify({ data: { login: { token: user.token } } }))
    }
    const user = Object.values(users).find((u) => headers.authorization === `Bearer ${u.token}`)
    return new Response(JSON.stringify({ data: { me: user?.me } }))
  }) as typeof fetch
}

describe('cacheThenNetwork', () => {
  it('shows the cached answer first and then the fresh one', async () => {
    const seen: Cached<number>[] = []
    await cacheThenNetwork('k', async () => 1, (r) => seen.push(r))
    await cacheThenNetwork('k', async () => 2, (r) => seen.push(r))
    expect(seen.map((r) => [r.data, r.fromCache])).toEqual([
      [1, false],
      [1, true],
      [2, false],
    ])
  })

  it('falls back to the cache when offline and fails when there is none', async () => {
    const offline = async (): Promise<number> => {
      throw new ApiError('NETWORK', 'offline')
    }
    await expect(cacheThenNetwork('none', offline, () => {})).rejects.toMatchObject({ code: 'NETWORK' })
    await cacheThenNetwork('k', async () => 7, () => {})
    const seen: number[] = []
    await cacheThenNetwork('k', offline, (r) => seen.push(r.data))
    expect(seen).toEqual([7])
  })

  it('does not hide a refusal behind a stale cache', async () => {
    await cacheThenNetwork('k', async () => 7, () => {})
    const forbidden = async (): Promise<number> => {
      throw new ApiError('FORBIDDEN', 'no')
    }
    await expect(cacheThenNetwork('k', forbidden, () => {})).rejects.toMatchObject({ code: 'FORBIDDEN' })
  })
})

describe('session', () => {
  const me = { id: '1', username: 'pt.sun', displayName: '孙治疗师', roles: ['therapist'], department: null }
  const other = { id: '2', username: 'dr.li', displayName: '李医生', roles: ['surgeon'], department: null }

  it('keeps the login on the device for an offline reload', async () => {
    fakeGraphQL({ 'pt.sun': { token: 't1', me } })
    await login('pt.sun', 'pw')
    session.token = null
    session.me = null
    await restoreSession()
    expect(session.token).toBe('t1')
    expect((session.me as { username: string } | null)?.username).toBe('pt.sun')
    await logout()
    await restoreSession()
    expect(session.token).toBeNull()
  })

  it("forgets the previous user's cached data when someone else signs in", async () => {
    fakeGraphQL({ 'pt.sun': { token: 't1', me }, 'dr.li': { token: 't2', me: other } })
    await login('pt.sun', 'pw')
    await db().cache.put({ key: 'worklist:2025-01-01', data: [1], at: '' })
    await login('pt.sun', 'pw')
    expect(await db().cache.count()).toBe(1)
    await login('dr.li', 'pw')
    expect(await db().cache.count()).toBe(0)
  })

  it('rejects a wrong password with the server code', async () => {
    fakeGraphQL({ 'pt.sun': { token: 't1', me } })
    await expect(login('pt.sun', 'nope')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' })
  })
})

describe('errorText', () => {
  it("speaks the user's language: the server's own words when sent, else the code's text", () => {
    const notFound = new ApiError('NOT_FOUND', '用户不存在 / user not found: x', 'username', { zh: '用户不存在', en: 'user not found: x' })
    i18n.global.locale.value = 'zh-CN'
    expect(errorText(new ApiError('FULLY_BOOKED', 'x'))).toBe('该时段已约满')
    expect(errorText(new ApiError('NEW_CODE', '新的错误 / a new error', undefined, { zh: '新的错误', en: 'a new error' }))).toBe('新的错误')
    expect(errorText(notFound)).toBe('用户不存在')
    i18n.global.locale.value = 'en'
    expect(errorText(new ApiError('FULLY_BOOKED', 'x'))).toBe('This slot is fully booked')
    expect(errorText(new ApiError('NEW_CODE', '新的错误 / a new error', undefined, { zh: '新的错误', en: 'a new error' }))).toBe('a new error')
    expect(errorText(notFound)).toBe('user not found: x')
    expect(errorText(new ApiError('VALIDATION', 'x', 'plannedAt'))).toBe('Please check: plannedAt')
    // A text without its parts is never cut at " / ".
    expect(errorText(new ApiError('NEW_CODE', '处理：通报批评 / 扣绩效'))).toBe('处理：通报批评 / 扣绩效')
    // The network's own failures are the client's words, whatever the server said.
    expect(errorText(new ApiError('UNAVAILABLE', 'x', undefined, { zh: '数据库暂时不可用', en: 'database down' }))).toBe(i18n.global.t('errors.UNAVAILABLE'))
    i18n.global.locale.value = 'zh-CN'
  })
})

describe('helpers', () => {
  it('opens the screen of a notification subject', () => {
    expect(screenFor({ subjectType: 'approval', subjectId: 4 })).toBe('/approvals/4')
    // What the server sends for an approval's notices (a surgeon's application).
    expect(screenFor({ subjectType: 'approval_instance', subjectId: 7 })).toBe('/approvals/7')
    expect(screenFor({ task_id: 9 })).toBe('/tasks/9')
    expect(screenFor({ url: '/worklist' })).toBe('/worklist')
    expect(screenFor({ url: 'https://evil.example/' })).toBe('/notices')
    expect(screenFor({ url: '//evil.example/' })).toBe('/notices')
  })

  it('shows days and times in Shanghai', () => {
    expect(shanghaiDate(new Date('2025-03-01T17:30:00Z'))).toBe('2025-03-02')
    expect(formatDateTime('2025-03-01T17:30:00Z', 'en-GB')).toContain('01:30')
    expect(formatDateTimeYear('2025-12-31T17:30:00Z', 'zh-CN')).toBe('2026/01/01 01:30')
    expect(toLocalInput('2025-12-31T17:30:00Z')).toBe('2026-01-01T01:30')
    expect(fromLocalInput('2026-01-01T01:30')).toBe('2025-12-31T17:30:00.000Z')
  })

  it('says how long is left in words', () => {
    expect(formatSpan((60 + 59) * 60_000 + 30_000)).toBe('1小时59分钟')
    expect(formatSpan(2 * 3600_000, 'en')).toBe('2 h')
    expect(formatSpan(23 * 3600_000 + 59 * 60_000)).toBe('23小时59分钟')
    expect(formatSpan(3 * 86_400_000 + 3600_000)).toBe('3天1小时')
    expect(formatSpan(30_000)).toBe('0分钟')
  })
})

describe('pullChanges', () => {
  it('stores puts, applies deletes and removes a patient no longer visible from cached screens', async () => {
    const { pullChanges, recordedAppointments } = await import('../src/offline/pull')
    await db().cache.put({ key: 'worklist:2025-03-03', data: [{ id: '1', patient: { id: '5' } }, { id: '2', patient: { id: '6' } }], at: '' })
    await db().cache.put({ key: 'appointment:2', data: { id: '2', patient: { id: '6' } }, at: '' })
    const cookies: (string | null)[] = []
    await pullChanges(async (cookie) => {
      cookies.push(cookie)
      return { cookie: 'c1', reset: false, puts: [{ entity: 'treatment_record', id: '9', data: { appointment_id: 1 } }], deletes: [] }
    })
    expect([...(await recordedAppointments())]).toEqual(['1'])
    await pullChanges(async (cookie) => {
      cookies.push(cookie)
      return { cookie: 'c2', reset: false, puts: [], deletes: [{ entity: 'patient', id: '6' }, { entity: 'treatment_record', id: '9' }] }
    })
    expect(cookies).toEqual([null, 'c1'])
    expect((await db().cache.get('worklist:2025-03-03'))?.data).toEqual([{ id: '1', patient: { id: '5' } }])
    expect(await db().cache.get('appointment:2')).toBeUndefined()
    expect((await recordedAppointments()).size).toBe(0)
  })
})

describe('localPath', () => {
  it('keeps links into this app and refuses others', async () => {
    const { localPath } = await import('../src/notice-links')
    expect(localPath('https://h.example/n/5?sig=ab', 'https://h.example')).toBe('/n/5?sig=ab')
    expect(localPath('/tasks/3', 'https://h.example')).toBe('/tasks/3')
    expect(localPath('https://evil.example/n/5', 'https://h.example')).toBeNull()
    expect(localPath(undefined, 'https://h.example')).toBeNull()
  })
})
