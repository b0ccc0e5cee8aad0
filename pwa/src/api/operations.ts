// Every GraphQL document the app sends, by the names in CONTRACT.md. Operations owned by
// other areas are used as the contract names them; fields beyond the contract are kept to
// what those areas' schemas define.
export const LOGIN = `mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { token }
}`

export const ME = `query Me { me { id username displayName roles department { id name } } }`

const PATIENT_FIELDS = `patient { id name gender age mrn allergies }`

export const MY_TASKS = `query MyTasks { myTasks { id status kind dueAt overdue step { name nameEn } instance { id kind status dueAt data ${PATIENT_FIELDS} applicant { displayName } } } }`

const INSTANCE_FIELDS = `id kind status dueAt overdue data blockedReason createdAt closedAt hasPdf historyVerified viewerCanWithdraw viewerCanResubmit
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
  myWorklist(date: $date) { id status startsAt endsAt room version patient { id name } order { id paymentStatus remainingSessions } item { ${ITEM_FIELDS} } }
}`

export const CALL_NEXT = `mutation CallNext($queueKey: String!) { callNext(queueKey: $queueKey) { id number status patient { name } } }`

export const DAY_QUEUE = `query DayQueue($queueKey: String!, $date: Date!) { dayQueue(queueKey: $queueKey, date: $date) { id number position status patient { name } appointment { id } } }`

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
