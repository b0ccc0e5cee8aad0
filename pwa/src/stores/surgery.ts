// A surgeon's applications: patients and the catalog to choose from, the pre-check, submit,
// amend and resubmit after 退回, withdraw, and the approval notice (手术审批通知书) PDF.
import { gql } from '../api/graphql'
import { ApiError } from '../api/errors'
import {
  MY_APPLICATIONS,
  PATIENTS,
  PRECHECK_SURGERY,
  RESUBMIT_SURGERY,
  SUBMIT_SURGERY,
  SURGERY_CATALOG,
  SURGERY_DOCUMENT,
  SURGERY_NOTICE,
  WITHDRAW_APPLICATION,
} from '../api/operations'
import { sha256Hex } from '../offline/attachments'
import { session } from './session'
import type { PatientSummary } from './approvals'

export interface PatientChoice {
  id: string
  name: string
  gender: string
  mrn: string
  birthDate: string | null
  allergies: string[]
}

export interface CatalogProcedure {
  code: string
  name: string
  nameEn: string
  grade: number
  level: string
}

export interface Finding {
  code: string
  message: string
  field: string | null
  messages?: { zh: string; en: string }
}

export interface Precheck {
  passed: boolean
  findings: Finding[]
}

export interface SurgeryInput {
  patientId: string
  procedureCode: string
  plannedAt: string
  emergency: boolean
  diagnosis: string
  anesthesia: string
  preopAssessment: string
  consentSigned: boolean
  attachments: string[]
  emergencyOverride: boolean
  overrideReason: string | null
}

export interface MyApplication {
  id: string
  status: string
  dueAt: string | null
  overdue: boolean
  createdAt: string
  closedAt: string | null
  hasPdf: boolean
  data: Record<string, unknown>
  viewerCanWithdraw: boolean
  viewerCanResubmit: boolean
  patient: PatientSummary | null
  currentSteps: { id: string; name: string; nameEn: string }[]
  tasks: { id: string; status: string; assignee: { displayName: string } | null; step: { id: string } }[]
}

export async function searchPatients(search: string): Promise<PatientChoice[]> {
  return (await gql<{ patients: PatientChoice[] }>(PATIENTS, { search: search.trim() || null })).patients
}

let catalogCache: CatalogProcedure[] | null = null
export async function surgeryCatalog(): Promise<CatalogProcedure[]> {
  catalogCache ??= (await gql<{ surgeryCatalog: CatalogProcedure[] }>(SURGERY_CATALOG)).surgeryCatalog
  return catalogCache
}

export async function precheck(input: SurgeryInput): Promise<Precheck> {
  return (await gql<{ precheckSurgeryApplication: Precheck }>(PRECHECK_SURGERY, { input })).precheckSurgeryApplication
}

/** The findings a refused submission carries (PRECHECK_FAILED), else the error itself. */
export function findingsOf(err: unknown): Finding[] | null {
  if (err instanceof ApiError && err.code === 'PRECHECK_FAILED') return (err.details?.findings as Finding[] | undefined) ?? []
  return null
}

export async function submit(input: SurgeryInput, idempotencyKey: string): Promise<{ id: string; status: string }> {
  return (await gql<{ submitSurgeryApplication: { id: string; status: string } }>(SUBMIT_SURGERY, { input, idempotencyKey })).submitSurgeryApplication
}

export async function resubmit(instanceId: string, input: SurgeryInput, comment: string): Promise<{ id: string; status: string }> {
  return (await gql<{ resubmitSurgeryApplication: { id: string; status: string } }>(RESUBMIT_SURGERY, { instanceId, input, comment: comment || null })).resubmitSurgeryApplication
}

export async function withdraw(id: string, comment: string): Promise<void> {
  await gql(WITHDRAW_APPLICATION, { id, comment: comment || null })
}

export async function myApplications(): Promise<MyApplication[]> {
  return (await gql<{ myApplications: MyApplication[] }>(MY_APPLICATIONS)).myApplications
}

/** POST /attachments: a photographed or scanned pre-operative document; its sha256. */
export async function uploadDocument(file: Blob): Promise<string> {
  const hash = await sha256Hex(await file.arrayBuffer())
  const form = new FormData()
  form.append('sha256', hash)
  form.append('kind', 'document')
  form.append('file', file, (file as File).name || `${hash}.bin`)
  let response: Response
  try {
    response = await fetch('/attachments', { method: 'POST', body: form, headers: session.token ? { authorization: `Bearer ${session.token}` } : {} })
  } catch {
    throw new ApiError('NETWORK', 'upload failed')
  }
  if (!response.ok && response.status !== 409) {
    const body = await response.json().catch(() => ({}))
    const error = body?.error ?? {}
    throw new ApiError(error.code ?? 'UNAVAILABLE', error.message ?? `upload ${response.status}`, error.field, error.messages)
  }
  return hash
}

/** The 手术审批通知书 as a PDF blob (the server logs the export). */
export async function noticePdf(instanceId: string): Promise<{ blob: Blob; filename: string }> {
  const { surgeryNotice } = await gql<{ surgeryNotice: { filename: string; contentType: string; contentBase64: string } }>(SURGERY_NOTICE, { instanceId })
  const bytes = Uint8Array.from(atob(surgeryNotice.contentBase64), (c) => c.charCodeAt(0))
  return { blob: new Blob([bytes], { type: surgeryNotice.contentType }), filename: surgeryNotice.filename }
}

/** A filed pre-operative document as an object URL (the server logs the read). */
export async function documentUrl(instanceId: string, sha256: string): Promise<string> {
  const { surgeryDocument } = await gql<{ surgeryDocument: { contentType: string; contentBase64: string } }>(SURGERY_DOCUMENT, { instanceId, sha256 })
  const bytes = Uint8Array.from(atob(surgeryDocument.contentBase64), (c) => c.charCodeAt(0))
  return URL.createObjectURL(new Blob([bytes], { type: surgeryDocument.contentType }))
}
