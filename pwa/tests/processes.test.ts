import { describe, expect, it } from 'vitest'
import { holds, type Condition } from '../src/stores/processes'

// The app shows a field as required while its required-if holds; the server decides with
// the same rule (api/domain/approvals/conditions.py). Cases worked by hand.
describe('required-if conditions in the app', () => {
  const sickNote: Condition = { field: 'leave_type', op: '==', value: 'sick' }
  const longLeave: Condition = { field: 'days', op: '>', value: 1 }

  it('compares a present value', () => {
    expect(holds(sickNote, { leave_type: 'sick' })).toBe(true)
    expect(holds(sickNote, { leave_type: 'annual' })).toBe(false)
    expect(holds(longLeave, { days: 2 })).toBe(true)
    expect(holds(longLeave, { days: 1 })).toBe(false)
  })

  it('a missing value satisfies only != and not_in', () => {
    expect(holds(longLeave, {})).toBe(false)
    expect(holds({ field: 'x', op: '!=', value: 'a' }, {})).toBe(true)
    expect(holds({ field: 'x', op: 'not_in', value: ['a'] }, { x: '' })).toBe(true)
    expect(holds({ field: 'x', op: 'in', value: ['a'] }, { x: [] })).toBe(false)
  })

  it('mismatched types never compare', () => {
    expect(holds(longLeave, { days: '2' })).toBe(false)
  })

  it('exists, all, any, not', () => {
    expect(holds({ field: 'x', op: 'exists' }, { x: 0 })).toBe(true)
    expect(holds({ field: 'x', op: 'exists', value: false }, {})).toBe(true)
    const both: Condition = { all: [sickNote, longLeave] }
    expect(holds(both, { leave_type: 'sick', days: 3 })).toBe(true)
    expect(holds(both, { leave_type: 'sick', days: 1 })).toBe(false)
    expect(holds({ any: [sickNote, longLeave] }, { leave_type: 'annual', days: 3 })).toBe(true)
    expect(holds({ not: sickNote }, { leave_type: 'annual' })).toBe(true)
    expect(holds(null, {})).toBe(true)
  })
})
