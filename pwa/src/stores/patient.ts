// The patient's side (Official Account H5): orders, free slots by day, booking.
import { gql } from '../api/graphql'
import { ANSWER_FOLLOW_UP, APPOINTMENT, APPOINTMENT_RECEIPT, AVAILABLE_SLOTS, BOOK_APPOINTMENT, CANCEL_APPOINTMENT, MY_APPOINTMENTS, MY_FOLLOW_UPS, MY_ORDERS, RESCHEDULE_APPOINTMENT } from '../api/operations'
import { cacheThenNetwork, type Cached } from '../offline/cache'
import type { TemplateField } from './treatments'

export interface Order {
  id: string
  sessions: number
  usedSessions: number
  remainingSessions: number
  paymentStatus: string
  item: { code: string; name: string; nameEn: string; notes: string }
}

export interface Slot {
  id: string
  startsAt: string
  endsAt: string
  remaining: number
  capacity: number
  room: string
  therapist?: { displayName: string } | null
  item?: { name: string; nameEn: string }
}

export interface PatientAppointment {
  id: string
  status: string
  startsAt: string
  endsAt: string
  room: string
  receiptNo: string
  receipt?: Record<string, unknown>
  item: { code: string; name: string; nameEn: string; notes: string; location?: string }
  order: { id: string; sessions?: number; remainingSessions?: number } | null
  patient?: { name: string; mrn: string }
  therapist?: { displayName: string } | null
}

export interface FollowUp {
  id: string
  dueAt: string
  status: string
  questionnaire: TemplateField[]
  answers: Record<string, unknown>
  item: { name: string; nameEn: string }
}

export function loadOrders(show: (r: Cached<{ orders: Order[]; appointments: PatientAppointment[] }>) => void): Promise<void> {
  return cacheThenNetwork(
    'patient:home',
    async () => {
      const [{ myOrders }, { myAppointments }] = await Promise.all([
        gql<{ myOrders: Order[] }>(MY_ORDERS),
        gql<{ myAppointments: PatientAppointment[] }>(MY_APPOINTMENTS),
      ])
      return { orders: myOrders, appointments: myAppointments }
    },
    show,
  )
}

export async function slotsByDay(itemCode: string, from: string, to: string): Promise<Map<string, Slot[]>> {
  const { availableSlots } = await gql<{ availableSlots: Slot[] }>(AVAILABLE_SLOTS, { itemCode, from, to })
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' })
  const byDay = new Map<string, Slot[]>()
  for (const slot of availableSlots) {
    const key = day.format(new Date(slot.startsAt))
    byDay.set(key, [...(byDay.get(key) ?? []), slot])
  }
  return byDay
}

export async function book(slotId: string, orderId: string, idempotencyKey: string): Promise<PatientAppointment> {
  return (await gql<{ bookAppointment: PatientAppointment }>(BOOK_APPOINTMENT, { slotId, orderId, idempotencyKey })).bookAppointment
}

export async function reschedule(id: string, slotId: string, idempotencyKey: string): Promise<PatientAppointment> {
  return (await gql<{ rescheduleAppointment: PatientAppointment }>(RESCHEDULE_APPOINTMENT, { id, slotId, idempotencyKey })).rescheduleAppointment
}

export async function cancel(id: string): Promise<void> {
  await gql(CANCEL_APPOINTMENT, { id })
}

export function loadAppointment(id: string, show: (r: Cached<PatientAppointment>) => void): Promise<void> {
  return cacheThenNetwork(`patient:appointment:${id}`, async () => (await gql<{ appointment: PatientAppointment }>(APPOINTMENT, { id })).appointment, show)
}

export function loadFollowUps(show: (r: Cached<FollowUp[]>) => void): Promise<void> {
  return cacheThenNetwork('patient:followups', async () => (await gql<{ myFollowUps: FollowUp[] }>(MY_FOLLOW_UPS)).myFollowUps, show)
}

export async function answerFollowUp(id: string, answers: Record<string, unknown>, idempotencyKey: string): Promise<void> {
  await gql(ANSWER_FOLLOW_UP, { id, answers, idempotencyKey })
}

/** The receipt (回执单) as a PDF blob, rendered by the server (which logs the copy). */
export async function receiptPdf(id: string): Promise<{ blob: Blob; filename: string }> {
  const { appointmentReceipt } = await gql<{ appointmentReceipt: { filename: string; contentType: string; contentBase64: string } }>(APPOINTMENT_RECEIPT, { id })
  const bytes = Uint8Array.from(atob(appointmentReceipt.contentBase64), (c) => c.charCodeAt(0))
  return { blob: new Blob([bytes], { type: appointmentReceipt.contentType }), filename: appointmentReceipt.filename }
}
