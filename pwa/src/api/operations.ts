// Every GraphQL document the app sends, by the names in CONTRACT.md. Operations owned by
// other areas are used as the contract names them; fields beyond the contract are kept to
// what those areas' schemas define.
export const LOGIN = `mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { token }
}`

export const ME = `query Me { me { id username displayName roles department { id name } mustChangePassword } }`

const PATIENT_FIELDS = `patient { id name gender age mrn allergies }`

const FORM_ENTRIES = `formEntries { key label { zh en } type text { zh en } }`

export const MY_TASKS = `query MyTasks { myTasks { id status kind dueAt overdue step { name nameEn } instance { id kind status dueAt data ${PATIENT_FIELDS} applicant { displayName } processName { zh en } ${FORM_ENTRIES} } } }`

const INSTANCE_FIELDS = `id kind status dueAt overdue data blockedReason createdAt closedAt hasPdf historyVerified viewerCanWithdraw viewerCanResubmit
    processName { zh en } ${FORM_ENTRIES}
    ${PATIENT_FIELDS}
    applicant { username displayName }
    currentSteps { id name nameEn }
    precheck { passed findings { code message field messages { zh en } } }
    tasks { id status kind dueAt decidedAt comment viewerCanDecide assignee { username displayName } step { id name nameEn } returnTargets { id name nameEn } }
    history { seq action at hash data actor { username displayName } person { username displayName } step { id name nameEn } }`

export const APPROVAL_INSTANCE = `query ApprovalInstance($id: ID!) { approvalInstance(id: $id) { ${INSTANCE_FIELDS} } }`

export const APPROVAL_TASK = `query ApprovalTask($id: ID!) { approvalTask(id: $id) { id status instance { id } } }`

export const SURGERY_APPLICATION = `query SurgeryApplication($instanceId: ID!) {
  surgeryApplication(instanceId: $instanceId) { patientId procedureCode grade plannedAt emergency diagnosis anesthesia preopAssessment consentSigned emergencyOverride overrideReason attachments noticeSha256
    procedure { code name nameEn grade level } surgeon { username displayName } }
}`

export const MY_APPLICATIONS = `query MyApplications { myApplications(kind: "surgery") { id status dueAt overdue createdAt closedAt hasPdf data viewerCanWithdraw viewerCanResubmit ${PATIENT_FIELDS} currentSteps { id name nameEn } tasks { id status assignee { displayName } step { id } } } }`

export const PATIENTS = `query Patients($search: String) { patients(search: $search) { id name gender mrn birthDate allergies } }`

export const SURGERY_CATALOG = `query Catalog { surgeryCatalog { code name nameEn grade level } }`

export const STAFF = `query Staff($search: String) { staff(search: $search) { id username displayName department { name nameEn } } }`

export const PRECHECK_SURGERY = `query Precheck($input: SurgeryApplicationInput!) { precheckSurgeryApplication(input: $input) { passed findings { code message field messages { zh en } } } }`

export const SUBMIT_SURGERY = `mutation Submit($input: SurgeryApplicationInput!, $idempotencyKey: String) {
  submitSurgeryApplication(input: $input, idempotencyKey: $idempotencyKey) { id status precheck { passed findings { code message field messages { zh en } } } }
}`

export const RESUBMIT_SURGERY = `mutation Resubmit($instanceId: ID!, $input: SurgeryApplicationInput!, $comment: String) {
  resubmitSurgeryApplication(instanceId: $instanceId, input: $input, comment: $comment) { id status }
}`

export const WITHDRAW_APPLICATION = `mutation Withdraw($id: ID!, $comment: String) { withdrawApplication(id: $id, comment: $comment) { id status } }`

export const SURGERY_DOCUMENT = `query Document($instanceId: ID!, $sha256: String!) { surgeryDocument(instanceId: $instanceId, sha256: $sha256) { contentType contentBase64 } }`

export const SURGERY_NOTICE = `query Notice($instanceId: ID!) { surgeryNotice(instanceId: $instanceId) { filename contentType sha256 contentBase64 } }`

export const DECIDE_TASK = `mutation DecideTask($taskId: ID!, $decision: Decision!, $comment: String, $idempotencyKey: String, $returnTo: String) {
  decideTask(taskId: $taskId, decision: $decision, comment: $comment, idempotencyKey: $idempotencyKey, returnTo: $returnTo) { id status }
}`

export const TRANSFER_TASK = `mutation TransferTask($taskId: ID!, $toUsername: String!, $comment: String) {
  transferTask(taskId: $taskId, toUsername: $toUsername, comment: $comment) { id status }
}`

export const ADD_SIGNER = `mutation AddSigner($taskId: ID!, $username: String!, $comment: String) {
  addSigner(taskId: $taskId, username: $username, comment: $comment) { id status }
}`

export const URGE_TASK = `mutation Urge($taskId: ID!) { urgeTask(taskId: $taskId) { id status } }`

const ITEM_FIELDS = `id code name nameEn durationMinutes notes requiresConsent recordTemplate assessmentTemplate currentConsent { id title body sha256 }`

export const MY_WORKLIST = `query MyWorklist($date: Date!) {
  myWorklist(date: $date) { id status startsAt endsAt room version receiptNo patient { id name mrn } order { id paymentStatus remainingSessions } item { ${ITEM_FIELDS} } }
}`

export const CALL_NEXT = `mutation CallNext($queueKey: String!) { callNext(queueKey: $queueKey) { id number status patient { name } } }`

export const DAY_QUEUE = `query DayQueue($queueKey: String!, $date: Date!, $includeDone: Boolean! = false) { dayQueue(queueKey: $queueKey, date: $date, includeDone: $includeDone) { id number position status patient { name } appointment { id } } }`

export const SYNC_CONFLICTS = `query { syncConflicts { id entity entityId field baseValue losingValue winningValue clientWon status createdAt } }`

export const RESOLVE_CONFLICT = `mutation Resolve($id: ID!, $resolution: ConflictResolution!) { resolveSyncConflict(id: $id, resolution: $resolution) { id status } }`

export const MY_ORDERS = `query MyOrders { myOrders { id sessions usedSessions remainingSessions paymentStatus item { code name nameEn notes } } }`

export const MY_APPOINTMENTS = `query MyAppointments { myAppointments { id status startsAt endsAt room receiptNo item { code name nameEn notes } order { id } } }`

export const APPOINTMENT = `query Appointment($id: ID!) { appointment(id: $id) { id status startsAt endsAt room receiptNo receipt item { code name nameEn notes location } order { id sessions remainingSessions } patient { name mrn } therapist { displayName } } }`

export const APPOINTMENT_RECEIPT = `query Receipt($id: ID!) { appointmentReceipt(id: $id) { filename contentType contentBase64 } }`

export const AVAILABLE_SLOTS = `query AvailableSlots($itemCode: String!, $from: Date!, $to: Date!) {
  availableSlots(itemCode: $itemCode, from: $from, to: $to) { id startsAt endsAt remaining capacity room therapist { displayName } item { name nameEn } }
}`

export const BOOK_APPOINTMENT = `mutation Book($slotId: ID!, $orderId: ID, $idempotencyKey: String) {
  bookAppointment(slotId: $slotId, orderId: $orderId, idempotencyKey: $idempotencyKey) { id startsAt status receiptNo }
}`

export const RESCHEDULE_APPOINTMENT = `mutation Reschedule($id: ID!, $slotId: ID!, $idempotencyKey: String) {
  rescheduleAppointment(id: $id, slotId: $slotId, idempotencyKey: $idempotencyKey) { id startsAt status }
}`

export const CANCEL_APPOINTMENT = `mutation Cancel($id: ID!) { cancelAppointment(id: $id) { id status } }`

export const MY_FOLLOW_UPS = `query { myFollowUps { id dueAt status questionnaire answers answeredAt item { name nameEn } } }`

export const ANSWER_FOLLOW_UP = `mutation Answer($id: ID!, $answers: JSON!, $idempotencyKey: String) { answerFollowUp(id: $id, answers: $answers, idempotencyKey: $idempotencyKey) { id status } }`

export const MY_NOTICES = `query MyNotices { myNotices { id kind title body titleText { zh en } bodyText { zh en } critical readAt createdAt subjectType subjectId deliveries { channel at status } } }`

export const APPEAL_PENALTY_SCORE = `mutation Appeal($id: ID!, $reason: String!) { appealPenaltyScore(id: $id, reason: $reason) { id status } }`

export const MARK_NOTICE_READ = `mutation MarkRead($id: ID!) { markNoticeRead(id: $id) { id readAt } }`

export const APPROVAL_METRICS = `query Metrics($since: DateTime!, $until: DateTime!) {
  approvalMetrics(since: $since, until: $until) { submitted decided completedWithin24hRate emergencyWithin2hRate medianHoursToDecision overdueCount }
}`

export const PENALTY_RANKING = `query Ranking($since: DateTime!, $until: DateTime!) {
  penaltyRanking(since: $since, until: $until) { departments { departmentName points count rank } departmentCategories departmentSeries { name data } doctorCategories doctorSeries { name data } }
}`

export const TREATMENT_STATISTICS = `query Stats($from: Date!, $to: Date!, $period: StatPeriod!, $groupBy: StatGroup!) {
  treatmentStatistics(from: $from, to: $to, period: $period, groupBy: $groupBy) { period key label sessions fulfilled noShows noShowRate }
}`

export const VAPID_KEY = `query { vapidPublicKey }`

export const REGISTER_PUSH = `mutation RegisterPush($input: PushSubscriptionInput!) { registerPushSubscription(input: $input) { id } }`

export const SYNC_PUSH = `mutation SyncPush($input: SyncPushInput!) {
  syncPush(input: $input) { lastMutationId results { id status code reason entity entityId } }
}`

export const SYNC_PULL = `query SyncPull($cookie: String, $clientGroupId: String) {
  syncPull(cookie: $cookie, clientGroupId: $clientGroupId) { cookie reset puts { entity id data } deletes { entity id } }
}`

// The administrator's desk and the access log (admin, medical affairs).
const ADMIN_USER_FIELDS = `id username displayName roles jobNumber mobile isActive lockedUntil mustChangePassword department { id code name }`

export const ADMIN_USERS = `query AdminUsers($search: String) { adminUsers(search: $search) { ${ADMIN_USER_FIELDS} } }`

export const ADMIN_DEPARTMENTS = `query AdminDepartments { adminDepartments { id code name nameEn head { id username displayName } } }`

export const UPDATE_USER = `mutation UpdateUser($userId: ID!, $displayName: String!, $roles: [String!]!, $departmentId: ID) {
  updateUser(userId: $userId, displayName: $displayName, roles: $roles, departmentId: $departmentId) { ${ADMIN_USER_FIELDS} }
}`

export const DEACTIVATE_USER = `mutation DeactivateUser($userId: ID!, $reason: String!) { deactivateUser(userId: $userId, reason: $reason) { ${ADMIN_USER_FIELDS} } }`

export const UNLOCK_USER = `mutation UnlockUser($userId: ID!) { unlockUser(userId: $userId) { ${ADMIN_USER_FIELDS} } }`

export const RESET_PASSWORD = `mutation ResetPassword($userId: ID!) { resetPassword(userId: $userId) { oneTimePassword user { ${ADMIN_USER_FIELDS} } } }`

export const SET_DEPARTMENT_HEAD = `mutation SetDepartmentHead($departmentId: ID!, $userId: ID) {
  setDepartmentHead(departmentId: $departmentId, userId: $userId) { id code name nameEn head { id username displayName } }
}`

const IMPORT_FIELDS = `kind applied created updated unchanged rows { row action what changes } errors { row column columnEn message }`

export const PREVIEW_IMPORT = `mutation PreviewImport($kind: String!, $filename: String!, $contentBase64: String!) {
  previewImport(kind: $kind, filename: $filename, contentBase64: $contentBase64) { ${IMPORT_FIELDS} }
}`

export const CONFIRM_IMPORT = `mutation ConfirmImport($kind: String!, $filename: String!, $contentBase64: String!) {
  confirmImport(kind: $kind, filename: $filename, contentBase64: $contentBase64) { ${IMPORT_FIELDS} }
}`

export const AUDIT_VERIFICATION = `query AuditVerification { auditVerification { checkedAt intact problems { stream seq reason } } }`

export const ACCESS_LOG = `query AccessLog($patientId: ID, $userId: ID, $from: DateTime, $to: DateTime) {
  accessLog(patientId: $patientId, userId: $userId, from: $from, to: $to) { id at action resource interface ip client patientIds actor { id username displayName } }
}`

export const EXPORT_ACCESS_LOG = `mutation ExportAccessLog($patientId: ID, $userId: ID, $from: DateTime, $to: DateTime) {
  exportAccessLog(patientId: $patientId, userId: $userId, from: $from, to: $to) { filename contentType content }
}`

export const STAFF_SEARCH = `query StaffSearch($search: String) { staff(search: $search) { id username displayName department { name } } }`

export const PATIENT_SEARCH = `query PatientSearch($search: String) { patients(search: $search) { id name mrn } }`

export const CHANGE_PASSWORD = `mutation ChangePassword($currentPassword: String!, $newPassword: String!) {
  changePassword(currentPassword: $currentPassword, newPassword: $newPassword) { token }
}`

// Medical affairs' penalty scoring: record, confirm, issue, end.
export const PENALTY_ITEMS = `query PenaltyItems { penaltyItems { id code category name points } }`

const SCORE_FIELDS = `id points occurredAt description status departmentName doctor { username displayName } item { code name category }`

export const PENALTY_SCORES = `query PenaltyScores { penaltyScores { ${SCORE_FIELDS} } }`

export const RECORD_PENALTY_SCORE = `mutation RecordPenaltyScore($input: PenaltyScoreInput!) { recordPenaltyScore(input: $input) { ${SCORE_FIELDS} } }`

export const CONFIRM_PENALTY_SCORE = `mutation ConfirmPenaltyScore($id: ID!) { confirmPenaltyScore(id: $id) { ${SCORE_FIELDS} } }`

const PENALTY_FIELDS = `id kind status statusZh totalPoints measure departmentName issuedAt endedAt endReason doctor { username displayName } rule { code name }`

export const PENALTIES = `query Penalties { penalties { ${PENALTY_FIELDS} } }`

export const ISSUE_PENALTY = `mutation IssuePenalty($id: ID!) { issuePenalty(id: $id) { ${PENALTY_FIELDS} } }`

export const END_PENALTY = `mutation EndPenalty($id: ID!, $reason: String!) { endPenalty(id: $id, reason: $reason) { ${PENALTY_FIELDS} } }`

// 发起审批: processes started with a form of their own (请假, 报销, 采购, 用印 …).
export const PROCESS_DEFINITIONS = `query ProcessDefinitions { processDefinitions(startableOnly: true) { key name names { zh en } description { zh en } version } }`

export const PROCESS_DEFINITION = `query ProcessDefinition($key: String!) { processDefinition(key: $key) { key names { zh en } description { zh en } version startable
  form { fields { key label { zh en } type required requiredIf help { zh en } unit { zh en } min max integer maxLength multiline options { value label { zh en } } } } } }`

export const START_PROCESS = `mutation StartProcess($definitionKey: String!, $form: JSON!, $idempotencyKey: String) {
  startProcess(definitionKey: $definitionKey, form: $form, idempotencyKey: $idempotencyKey) { id status currentSteps { id name nameEn } }
}`

export const MY_PROCESS_APPLICATIONS = `query MyProcessApplications { myApplications { id kind status dueAt overdue createdAt closedAt processName { zh en } currentSteps { id name nameEn } tasks { id status assignee { displayName } step { id } } } }`

export const WALK_IN_PATIENTS = `query WalkInPatients($search: String) { patients(search: $search) { id name mrn gender birthDate } }`

export const WALK_IN_ORDERS = `query WalkInOrders($patientId: ID!) { treatmentOrders(patientId: $patientId) { id remainingSessions paymentStatus item { code name nameEn } } }`

export const REGISTER_WALK_IN = `mutation RegisterWalkIn($orderId: ID!, $room: String!, $idempotencyKey: String) { registerWalkIn(orderId: $orderId, room: $room, idempotencyKey: $idempotencyKey) { id startsAt } }`
