// Notices (penalties, reminders) with read receipts, and the dashboards' numbers.
import { gql } from '../api/graphql'
import { APPEAL_PENALTY_SCORE, APPROVAL_METRICS, MARK_NOTICE_READ, MY_NOTICES, PENALTY_RANKING, TREATMENT_STATISTICS } from '../api/operations'
import { cacheThenNetwork, type Cached } from '../offline/cache'

export interface Notice {
  id: string
  kind: string
  title: string
  body: string
  /** The server's texts, already in each language. */
  titleText?: { zh: string; en: string }
  bodyText?: { zh: string; en: string }
  critical: boolean
  readAt: string | null
  createdAt: string
  subjectType: string | null
  subjectId: string | null
  deliveries: { channel: string; at: string; status: string }[]
}

export function loadNotices(show: (r: Cached<Notice[]>) => void): Promise<void> {
  return cacheThenNetwork('myNotices', async () => (await gql<{ myNotices: Notice[] }>(MY_NOTICES)).myNotices, show)
}

export async function markRead(id: string): Promise<{ id: string; readAt: string }> {
  return (await gql<{ markNoticeRead: { id: string; readAt: string } }>(MARK_NOTICE_READ, { id })).markNoticeRead
}

export interface Ranking {
  departments: { departmentName: string; points: number; count: number; rank: number }[]
  departmentCategories: string[]
  departmentSeries: { name: string; data: number[] }[]
  doctorCategories: string[]
  doctorSeries: { name: string; data: number[] }[]
}

export function loadRanking(since: string, until: string, show: (r: Cached<Ranking>) => void): Promise<void> {
  return cacheThenNetwork(`ranking:${since.slice(0, 10)}`, async () => (await gql<{ penaltyRanking: Ranking }>(PENALTY_RANKING, { since, until })).penaltyRanking, show)
}

export interface DayMetrics {
  day: string
  completedWithin24hRate: number | null
  overdueCount: number
  submitted: number
}

/** Documents with an aliased approvalMetrics per day: one round trip per 30 days (the
 *  server allows at most 30 aliases a document). */
export async function dailyApprovalMetrics(days: string[]): Promise<DayMetrics[]> {
  const chunks: string[][] = []
  for (let i = 0; i < days.length; i += 30) chunks.push(days.slice(i, i + 30))
  const parts = await Promise.all(
    chunks.map(async (chunk) => {
      const fields = chunk
        .map((day, i) => {
          const since = new Date(`${day}T00:00:00+08:00`).toISOString()
          const until = new Date(new Date(since).getTime() + 86_400_000).toISOString()
          return `d${i}: approvalMetrics(since: "${since}", until: "${until}") { completedWithin24hRate overdueCount submitted }`
        })
        .join('\n')
      const data = await gql<Record<string, Omit<DayMetrics, 'day'>>>(`query { ${fields} }`)
      return chunk.map((day, i) => ({ day, ...data[`d${i}`] }))
    }),
  )
  return parts.flat()
}

export interface StatRow {
  period: string
  key: string
  label: string
  sessions: number
  fulfilled: number
  noShows: number
  noShowRate: number
}

export async function treatmentStats(from: string, to: string, groupBy: 'THERAPIST' | 'ITEM' | 'DEPARTMENT', period: 'DAY' | 'WEEK' | 'MONTH' = 'DAY'): Promise<StatRow[]> {
  return (await gql<{ treatmentStatistics: StatRow[] }>(TREATMENT_STATISTICS, { from, to, groupBy, period })).treatmentStatistics
}

/** Important: critical, or a penalty's decision or score (told until read). */
export function isImportant(notice: Pick<Notice, 'critical' | 'kind'>): boolean {
  return notice.critical || notice.kind.startsWith('penalty.')
}

/** How many notices are unread (the home tile's badge); null when it cannot be told. */
export async function unreadCount(): Promise<number | null> {
  try {
    const { myNotices } = await gql<{ myNotices: { readAt: string | null }[] }>('query Unread { myNotices { id readAt } }')
    return myNotices.filter((n) => !n.readAt).length
  } catch {
    return null
  }
}

/** The statuses of my scores (which may still be appealed). */
export async function myScoreStatuses(): Promise<Map<string, string>> {
  const { penaltyScores } = await gql<{ penaltyScores: { id: string; status: string }[] }>('query MyScores { penaltyScores { id status } }')
  return new Map(penaltyScores.map((s) => [s.id, s.status]))
}

export async function appealScore(id: string, reason: string): Promise<{ id: string; status: string }> {
  return (await gql<{ appealPenaltyScore: { id: string; status: string } }>(APPEAL_PENALTY_SCORE, { id, reason })).appealPenaltyScore
}

export interface Metrics {
  submitted: number
  decided: number
  completedWithin24hRate: number | null
  emergencyWithin2hRate: number | null
  medianHoursToDecision: number | null
  overdueCount: number
}

export async function approvalMetrics(since: string, until: string): Promise<Metrics> {
  return (await gql<{ approvalMetrics: Metrics }>(APPROVAL_METRICS, { since, until })).approvalMetrics
}
