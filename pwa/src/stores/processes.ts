// 发起审批: the processes a staff member starts with a form, and their own applications.
import { gql } from '../api/graphql'
import type { Texts } from '../api/errors'
import { MY_PROCESS_APPLICATIONS, PATIENTS, PROCESS_DEFINITION, PROCESS_DEFINITIONS, START_PROCESS } from '../api/operations'

export interface ProcessSummary { key: string; name: string; names: Texts; description: Texts; version: number }

export interface FormOption { value: string; label: Texts }

/** A condition over the other fields, as the server stores it (never evaluated as code). */
export type Condition =
  | { field: string; op: string; value?: unknown }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }

export interface FormField {
  key: string
  label: Texts
  type: 'text' | 'number' | 'date' | 'datetime' | 'choice' | 'multi_choice' | 'person' | 'department' | 'patient' | 'attachment'
  required: boolean
  requiredIf: Condition | null
  help: Texts | null
  unit: Texts | null
  min: number | null
  max: number | null
  integer: boolean
  maxLength: number | null
  multiline: boolean
  options: FormOption[]
}

export interface ProcessDefinition { key: string; names: Texts; description: Texts; version: number; startable: boolean; form: { fields: FormField[] } | null }

export interface ProcessApplication {
  id: string
  kind: string
  status: string
  dueAt: string | null
  overdue: boolean
  createdAt: string
  closedAt: string | null
  processName: Texts
  currentSteps: { id: string; name: string; nameEn: string }[]
  tasks: { id: string; status: string; assignee: { displayName: string } | null; step: { id: string } }[]
}

export interface PatientChoice { id: string; name: string; mrn: string; gender: string }

export async function processDefinitions(): Promise<ProcessSummary[]> {
  return (await gql<{ processDefinitions: ProcessSummary[] }>(PROCESS_DEFINITIONS)).processDefinitions
}

export async function processDefinition(key: string): Promise<ProcessDefinition> {
  return (await gql<{ processDefinition: ProcessDefinition }>(PROCESS_DEFINITION, { key })).processDefinition
}

export async function startProcess(definitionKey: string, form: Record<string, unknown>, idempotencyKey: string): Promise<{ id: string; status: string; currentSteps: { id: string; name: string; nameEn: string }[] }> {
  return (await gql<{ startProcess: { id: string; status: string; currentSteps: { id: string; name: string; nameEn: string }[] } }>(START_PROCESS, { definitionKey, form, idempotencyKey })).startProcess
}

/** My applications of the processes started here (surgery has its own list). */
export async function myProcessApplications(startable: Set<string>): Promise<ProcessApplication[]> {
  const all = (await gql<{ myApplications: ProcessApplication[] }>(MY_PROCESS_APPLICATIONS)).myApplications
  return all.filter((a) => startable.has(a.kind))
}

export async function searchPatients(search: string): Promise<PatientChoice[]> {
  return (await gql<{ patients: PatientChoice[] }>(PATIENTS, { search: search.trim() || null })).patients
}

/** Whether a condition holds over the values filled in so far (the server's rule:
 *  a missing value satisfies only != and not_in; mismatched types never compare). */
export function holds(condition: Condition | null, data: Record<string, unknown>): boolean {
  if (!condition) return true
  if ('all' in condition) return condition.all.every((c) => holds(c, data))
  if ('any' in condition) return condition.any.some((c) => holds(c, data))
  if ('not' in condition) return !holds(condition.not, data)
  const actual = data[condition.field]
  const present = actual !== undefined && actual !== null && actual !== '' && !(Array.isArray(actual) && actual.length === 0)
  const value = condition.value
  if (condition.op === 'exists') return present === (value !== false)
  if (!present) return condition.op === '!=' || condition.op === 'not_in'
  const comparable = typeof actual === typeof value
  switch (condition.op) {
    case '==': return actual === value
    case '!=': return actual !== value
    case '>': return comparable && (actual as number) > (value as number)
    case '>=': return comparable && (actual as number) >= (value as number)
    case '<': return comparable && (actual as number) < (value as number)
    case '<=': return comparable && (actual as number) <= (value as number)
    case 'in': return Array.isArray(value) && value.includes(actual)
    case 'not_in': return Array.isArray(value) && !value.includes(actual)
    default: return false
  }
}
