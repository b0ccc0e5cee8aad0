// Where a notification tap leads: the screen of the notice's subject.
export interface NoticePayload {
  url?: string
  kind?: string
  subjectType?: string
  subject_type?: string
  subjectId?: string | number
  subject_id?: string | number
  taskId?: string | number
  task_id?: string | number
  noticeId?: string | number
}

export function screenFor(payload: NoticePayload): string {
  if (payload.url && /^\/(?!\/)/.test(payload.url)) return payload.url
  const type = payload.subjectType ?? payload.subject_type
  const id = payload.subjectId ?? payload.subject_id
  const task = payload.taskId ?? payload.task_id
  if (task != null) return `/tasks/${task}`
  if ((type === 'approval' || type === 'approval_instance') && id != null) return `/approvals/${id}`
  if (type === 'approval_task' && id != null) return `/tasks/${id}`
  if (type === 'appointment' && id != null) return `/appointments/${id}`
  if (type === 'follow_up' && id != null) return `/follow-up/${id}`
  if (type === 'penalty' || payload.kind?.startsWith('penalty')) return '/notices'
  return '/notices'
}

/** The path of a link if it points into this app (same origin), else null. */
export function localPath(url: string | undefined, origin: string): string | null {
  if (!url) return null
  try {
    const target = new URL(url, origin)
    return target.origin === origin ? target.pathname + target.search : null
  } catch {
    return null
  }
}
