// Photos and signatures stay in IndexedDB, keyed by the SHA-256 of their bytes, until
// uploaded. The same photo taken twice is stored (and uploaded) once.
import { ApiError } from '../api/errors'
import { db } from './db'

export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes)
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

export async function keepAttachment(blob: Blob, kind: 'photo' | 'signature'): Promise<string> {
  const hash = await sha256Hex(await blob.arrayBuffer())
  const existing = await db().attachments.get(hash)
  if (!existing) {
    await db().attachments.put({ hash, blob, mime: blob.type || 'application/octet-stream', kind, uploaded: 0, createdAt: new Date().toISOString() })
  }
  return hash
}

export async function waitingUploads(): Promise<number> {
  return db().attachments.where('uploaded').equals(0).count()
}

/** POST /attachments with the hash; the server answers the same for a repeated upload. */
export async function uploadAttachment(
  attachment: { hash: string; blob: Blob; mime: string; kind: string },
  token: string | null,
): Promise<void> {
  const form = new FormData()
  form.append('sha256', attachment.hash)
  form.append('kind', attachment.kind)
  form.append('file', attachment.blob, `${attachment.hash}.${attachment.mime.split('/')[1] ?? 'bin'}`)
  let response: Response
  try {
    response = await fetch('/attachments', {
      method: 'POST',
      body: form,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    })
  } catch {
    throw new ApiError('NETWORK', 'upload failed')
  }
  if (!response.ok && response.status !== 409) {
    throw new ApiError(response.status === 401 ? 'UNAUTHENTICATED' : 'UNAVAILABLE', `upload ${response.status}`)
  }
}
