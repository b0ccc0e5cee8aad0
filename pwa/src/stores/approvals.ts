// Approver data: my tasks (cached for offline reading), one instance, decisions.
import { gql } from '../api/graphql'
import type { Texts } from '../api/errors'
import { ADD_SIGNER, APPROVAL_INSTANCE, APPROVAL_TASK, SURGERY_APPLICATION, DECIDE_TASK, MY_TASKS, STAFF, TRANSFER_TASK, URGE_TASK } from '../api/operations'
import { cacheThenNetwork, readCache, type Cached } from '../offline/cache'

export interface PatientSummary {
  id: string
  name: string
  gender: string
  age: number | null
  mrn: string
  allergies: string[]
}

export interface TaskSummary {
  id: string
  status: string
  kind: string
  dueAt: string | null
  overdue: boolean
  step: { name: string; nameEn: string }
  instance: { id: string; kind: string; status: string; dueAt: string | null; data: Record<string, unknown>; patient: PatientSummary | null; applicant: { displayName: string } | null; processName?: Texts; formEntries?: FormEntry[] } | null
}

/** One filled-in field of an application, labelled by its form (server texts per language). */
export interface FormEntry { key: string; label: Texts; type: string; text: Texts }

export interface StaffMember { id: string; username: string; displayName: string; department: { name: string; nameEn: string } | null }

export interface UserRef { username: string; displayName: string }

export interface InstanceTask {
  id: string
  status: string
  kind: string
  dueAt: string | null
  decidedAt: string | null
  comment: string | null
  /** The server's answer: this viewer may decide this task now. */
  viewerCanDecide: boolean
  assignee: UserRef | null
  step: { id: string; name: string; nameEn: string }
  /** 退回: the earlier steps the server allows a return to (the applicant always). */
  returnTargets: { id: string; name: string; nameEn: string }[]
}

export interface ApprovalInstance {
  id: string
  kind: string
  status: string
  dueAt: string | null
  overdue: boolean
  data: Record<string, unknown>
  blockedReason: string | null
  createdAt: string
  closedAt: string | null
  hasPdf: boolean
  historyVerified: boolean
  viewerCanWithdraw: boolean
  viewerCanResubmit: boolean
  processName?: Texts
  formEntries?: FormEntry[]
  patient: PatientSummary | null
  applicant: UserRef | null
  currentSteps: { id: string; name: string; nameEn: string }[]
  precheck: { passed: boolean; findings: { code: string; message: string; field: string | null; messages?: { zh: string; en: string } }[] } | null
  tasks: InstanceTask[]
  history: { seq: number; action: string; at: string; hash: string; data: Record<string, unknown>; actor: UserRef | null; person: UserRef | null; step: { id: string; name: string; nameEn: string } | null }[]
}

export type Decision = 'APPROVE' | 'REJECT' | 'RETURN'

export function loadTasks(show: (r: Cached<TaskSummary[]>) => void): Promise<void> {
  return cacheThenNetwork('myTasks', async () => (await gql<{ myTasks: TaskSummary[] }>(MY_TASKS)).myTasks, show)
}

/** Open tasks for the home badge: from the network, else the cache, else nothing. */
export async function taskCount(): Promise<number | null> {
  let tasks: TaskSummary[] | null = null
  try {
    await loadTasks((r) => (tasks = r.data))
  } catch {
    tasks = (await readCache<TaskSummary[]>('myTasks'))?.data ?? null
  }
  return tasks ? (tasks as TaskSummary[]).filter((t) => t.status === 'pending').length : null
}

/** A task by id, decided or not (an old link): its instance and status. */
export async function loadTask(id: string): Promise<{ id: string; status: string; instance: { id: string } | null }> {
  return (await gql<{ approvalTask: { id: string; status: string; instance: { id: string } | null } }>(APPROVAL_TASK, { id })).approvalTask
}

export async function searchStaff(search: string): Promise<StaffMember[]> {
  return (await gql<{ staff: StaffMember[] }>(STAFF, { search: search.trim() || null })).staff
}

export function loadInstance(id: string, show: (r: Cached<ApprovalInstance>) => void): Promise<void> {
  return cacheThenNetwork(`approval:${id}`, async () => (await gql<{ approvalInstance: ApprovalInstance }>(APPROVAL_INSTANCE, { id })).approvalInstance, show)
}

/** The return target meaning "back to the applicant" (otherwise a step id). */
export const APPLICANT = 'applicant'

/** The same key on a retry of the same tap, so a lost answer never decides twice.
 *  `returnTo` (RETURN only): APPLICANT or the id of an earlier, approved step. */
export function decide(taskId: string, decision: Decision, comment: string, idempotencyKey: string, returnTo?: string): Promise<{ id: string; status: string }> {
  return gql<{ decideTask: { id: string; status: string } }>(DECIDE_TASK, { taskId, decision, comment: comment || null, idempotencyKey, returnTo: returnTo ?? null }).then((d) => d.decideTask)
}

export function transfer(taskId: string, toUsername: string, comment: string): Promise<unknown> {
  return gql(TRANSFER_TASK, { taskId, toUsername, comment: comment || null })
}

export function addSigner(taskId: string, username: string, comment: string): Promise<unknown> {
  return gql(ADD_SIGNER, { taskId, username, comment: comment || null })
}

export function urge(taskId: string): Promise<unknown> {
  return gql(URGE_TASK, { taskId })
}

export interface SurgeryApplication {
  patientId: string
  attachments: string[]
  noticeSha256: string | null
  procedure: { code: string; name: string; nameEn: string; grade: number; level: string } | null
  surgeon: UserRef | null
  procedureCode: string
  grade: number
  plannedAt: string
  emergency: boolean
  diagnosis: string
  anesthesia: string
  preopAssessment: string | null
  consentSigned: boolean
  emergencyOverride: boolean
  overrideReason: string | null
}

/** The clinical part of a surgery approval (the server logs this read). */
export function loadSurgeryApplication(instanceId: string, show: (r: Cached<SurgeryApplication>) => void): Promise<void> {
  return cacheThenNetwork(`surgery:${instanceId}`, async () => (await gql<{ surgeryApplication: SurgeryApplication }>(SURGERY_APPLICATION, { instanceId })).surgeryApplication, show)
}

/** The same, from the server only (a form to amend starts from what was last filed). */
export async function fetchSurgeryApplication(instanceId: string): Promise<SurgeryApplication> {
  return (await gql<{ surgeryApplication: SurgeryApplication }>(SURGERY_APPLICATION, { instanceId })).surgeryApplication
}
