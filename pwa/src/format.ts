// Times are stored in UTC and shown in Asia/Shanghai, whatever the device's zone.
const ZONE = 'Asia/Shanghai'

export function formatDateTime(iso: string | null | undefined, locale = 'zh-CN'): string {
  if (!iso) return ''
  return new Intl.DateTimeFormat(locale, { timeZone: ZONE, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(iso))
}

export function formatTime(iso: string, locale = 'zh-CN'): string {
  return new Intl.DateTimeFormat(locale, { timeZone: ZONE, hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(iso))
}

/** The calendar day (YYYY-MM-DD) in Shanghai of an instant; today by default. */
export function shanghaiDate(at: Date = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at)
}

export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + n)
  return d.toISOString().slice(0, 10)
}
