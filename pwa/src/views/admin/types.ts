export interface DepartmentRef { id: string; code: string; name: string }
export interface UserRef { id: string; username: string; displayName: string }
export interface AdminUser {
  id: string
  username: string
  displayName: string
  roles: string[]
  jobNumber: string | null
  mobile: string | null
  isActive: boolean
  lockedUntil: string | null
  mustChangePassword: boolean
  department: DepartmentRef | null
}
export interface AdminDepartment { id: string; code: string; name: string; nameEn: string; head: UserRef | null }
export interface ImportResult {
  kind: string
  applied: boolean
  created: number
  updated: number
  unchanged: number
  rows: { row: number; action: string; what: string; changes: string[] }[]
  errors: { row: number | null; column: string | null; columnEn: string | null; message: string }[]
}
