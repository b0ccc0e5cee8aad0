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

/** Date and time with the year (a planned operation, a decision on record). */
export function formatDateTimeYear(iso: string | null | undefined, locale = 'zh-CN'): string {
  if (!iso) return ''
  return new Intl.DateTimeFormat(locale, { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false }).format(new Date(iso))
}

/** A span of time in words: "1小时42分钟" / "1 h 42 min" (whole minutes). */
export function formatSpan(ms: number, locale = 'zh-CN'): string {
  const minutes = Math.max(0, Math.floor(Math.abs(ms) / 60000))
  // Days only from two days on: "23小时59分钟" says more than "1天".
  const days = minutes >= 2880 ? Math.floor(minutes / 1440) : 0
  const hours = Math.floor((minutes - days * 1440) / 60)
  const mins = minutes % 60
  const en = locale === 'en'
  const parts: string[] = []
  if (days) parts.push(en ? `${days} d` : `${days}天`)
  if (hours) parts.push(en ? `${hours} h` : `${hours}小时`)
  if (!days && (mins || !hours)) parts.push(en ? `${mins} min` : `${mins}分钟`)
  return parts.join(en ? ' ' : '')
}

/** The value of an <input type="datetime-local"> for an instant, in Shanghai time. */
export function toLocalInput(iso: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false }).formatToParts(new Date(iso))
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00'
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour') === '24' ? '00' : get('hour')}:${get('minute')}`
}

/** An <input type="datetime-local"> value, read as Shanghai time, as an ISO instant. */
export function fromLocalInput(value: string): string {
  return new Date(`${value}:00+08:00`).toISOString()
}
