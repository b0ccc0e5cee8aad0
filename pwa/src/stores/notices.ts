// Notices (penalties, reminders) with read receipts, and the dashboards' numbers.
import { gql } from '../api/graphql'
import { MARK_NOTICE_READ, MY_NOTICES, PENALTY_RANKING, TREATMENT_STATISTICS } from '../api/operations'
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

/** One document with an aliased approvalMetrics per day: one round trip for the chart. */
export async function dailyApprovalMetrics(days: string[]): Promise<DayMetrics[]> {
  const fields = days
    .map((day, i) => {
      const since = new Date(`${day}T00:00:00+08:00`).toISOString()
      const until = new Date(new Date(since).getTime() + 86_400_000).toISOString()
      return `d${i}: approvalMetrics(since: "${since}", until: "${until}") { completedWithin24hRate overdueCount submitted }`
    })
    .join('\n')
  const data = await gql<Record<string, Omit<DayMetrics, 'day'>>>(`query { ${fields} }`)
  return days.map((day, i) => ({ day, ...data[`d${i}`] }))
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
