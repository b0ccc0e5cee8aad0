// Every GraphQL document the app sends, by the names in CONTRACT.md. Operations owned by
// other areas are used as the contract names them; fields beyond the contract are kept to
// what those areas' schemas define.
export const LOGIN = `mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { token }
}`

export const ME = `query Me { me { id username displayName roles department { id name } } }`

export const MY_TASKS = `query MyTasks { myTasks { id status dueAt instance { id kind status } } }`

export const APPROVAL_INSTANCE = `query ApprovalInstance($id: ID!) {
  approvalInstance(id: $id) {
    id kind status
    precheck { passed findings { code message } }
    tasks { id assignee { username } status }
    history { action actor { username } at hash }
  }
}`

export const DECIDE_TASK = `mutation DecideTask($taskId: ID!, $decision: Decision!, $comment: String, $idempotencyKey: String) {
  decideTask(taskId: $taskId, decision: $decision, comment: $comment, idempotencyKey: $idempotencyKey) { id status }
}`

export const TRANSFER_TASK = `mutation TransferTask($taskId: ID!, $toUsername: String!, $comment: String) {
  transferTask(taskId: $taskId, toUsername: $toUsername, comment: $comment) { id status }
}`

export const ADD_SIGNER = `mutation AddSigner($taskId: ID!, $username: String!, $comment: String) {
  addSigner(taskId: $taskId, username: $username, comment: $comment) { id status }
}`

export const URGE = `mutation Urge($instanceId: ID!) { urge(instanceId: $instanceId) }`

export const MY_WORKLIST = `query MyWorklist($date: Date!) {
  myWorklist(date: $date) { id startsAt status patient { id name } item { code name } }
}`

export const MY_ORDERS = `query MyOrders { myOrders { id item { code name } remainingSessions paymentStatus } }`

export const AVAILABLE_SLOTS = `query AvailableSlots($itemCode: String!, $from: Date!, $to: Date!) {
  availableSlots(itemCode: $itemCode, from: $from, to: $to) { id startsAt remaining }
}`

export const BOOK_APPOINTMENT = `mutation Book($slotId: ID!, $orderId: ID) { bookAppointment(slotId: $slotId, orderId: $orderId) { id startsAt status } }`

export const CANCEL_APPOINTMENT = `mutation Cancel($id: ID!) { cancelAppointment(id: $id) { id status } }`

export const MY_NOTICES = `query MyNotices { myNotices { id kind title body readAt createdAt deliveries { channel at } } }`

export const MARK_NOTICE_READ = `mutation MarkRead($id: ID!) { markNoticeRead(id: $id) { id readAt } }`

export const APPROVAL_METRICS = `query Metrics($since: DateTime!, $until: DateTime!) {
  approvalMetrics(since: $since, until: $until) { completedWithin24hRate emergencyWithin2hRate medianHoursToDecision overdueCount }
}`

export const VAPID_KEY = `query { vapidPublicKey }`

export const REGISTER_PUSH = `mutation RegisterPush($endpoint: String!, $p256dh: String!, $auth: String!) {
  registerPushSubscription(endpoint: $endpoint, p256dh: $p256dh, auth: $auth)
}`

export const SYNC_PUSH = `mutation SyncPush($input: SyncPushInput!) {
  syncPush(input: $input) { lastMutationId results { id status code reason } }
}`
