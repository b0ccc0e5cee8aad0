import type zh from './zh-CN'

const en: typeof zh = {
  app: { name: 'Bedside', offline: 'Offline', unsent: '{n} unsent', syncing: 'Syncing…', rejected: '{n} rejected', language: '中文', back: 'Back', retry: 'Retry', loading: 'Loading…', empty: 'Nothing here', cached: 'Offline data · {at}', notBuilt: 'The server side of this feature is not available yet' },
  login: { title: 'Sign in', username: 'Username', password: 'Password', submit: 'Sign in', required: 'Please enter {field}', welcome: 'Welcome, {name}' },
  home: { title: 'Home', hello: 'Hello, {name}', logout: 'Sign out', tasks: 'My approvals', worklist: "Today's worklist", conflicts: 'Sync conflicts', orders: 'My treatments', notices: 'Notices', rankings: 'Department rankings', dashboard: 'Medical affairs dashboard', department: 'Department' },
  tasks: { title: 'My approvals', due: 'Due {at}', overdue: 'Overdue', detail: 'Approval', application: 'Application', precheck: 'Pre-check', passed: 'Passed', failed: 'Failed', history: 'History', comment: 'Comment', commentPlaceholder: 'Optional; give a reason when rejecting or returning', approve: 'Approve', reject: 'Reject', return: 'Return', transfer: 'Transfer', addSigner: 'Add signer', urge: 'Urge', toUser: 'Transfer to (username)', signer: 'Signer (username)', done: 'Submitted', confirmReject: 'Reject this application?', status: { PENDING: 'Pending', APPROVED: 'Approved', REJECTED: 'Rejected', RETURNED: 'Returned', TRANSFERRED: 'Transferred', CANCELLED: 'Cancelled', IN_PROGRESS: 'In progress' } },
  worklist: { title: "Today's worklist", queue: 'Queue', checkIn: 'Check in', callNext: 'Call next', record: 'Bedside record', unsentRecord: 'Record not sent yet', called: 'Called: {name}', checkedIn: 'Checked in' },
  record: { title: 'Bedside record', payment: 'Payment re-check', paid: 'Paid', unpaid: 'Not paid: no treatment', photos: 'Photos', addPhoto: 'Take photo', consent: 'Consent', consentText: 'I understand the purpose, method, possible risks and discomfort of this treatment and agree to receive it.', sign: 'Patient signs below', clear: 'Clear', signatureRequired: 'A signature is required', treatment: 'Treatment', durationMin: 'Duration (minutes)', durationRange: 'Duration must be 1–240 minutes', notes: 'Notes', notesRequired: 'Please describe the treatment', assessment: 'Assessment', painScore: 'Pain score (0–10)', painRange: 'Pain score must be 0–10', save: 'Save', saved: 'Saved; will be sent when online', savedOnline: 'Saved' },
  conflicts: { title: 'Sync conflicts', mine: 'This device', theirs: 'Server', keepMine: 'Keep mine', keepTheirs: 'Keep server', rejected: 'Rejected changes', none: 'No conflicts', discard: 'Discard' },
  patient: { orders: 'My treatments', remaining: '{n} sessions left', book: 'Book', slots: 'Choose a time', remainingSlots: '{n} left', full: 'Full', booked: 'Booked', appointments: 'My appointments', cancel: 'Cancel', reschedule: 'Reschedule', cancelled: 'Cancelled', receipt: 'Receipt', notes: 'Notes', notesText: 'Please arrive 10 minutes early and check in at the treatment room; wear loose clothing.', followUp: 'Follow-up questionnaire', paid: 'Paid', unpaid: 'Unpaid', q1: 'Is the pain less after treatment?', q2: 'Overall satisfaction', submit: 'Submit', thanks: 'Thank you for your feedback' },
  notices: { title: 'Notices', read: 'Read', unread: 'Unread', markRead: 'Mark as read', readAt: 'Read {at}', deliveries: 'Delivered' },
  rankings: { title: 'Department rankings', score: 'Points', department: 'Department' },
  dashboard: { title: 'Medical affairs dashboard', completion: 'Approvals completed within 24 h', overdue: 'Overdue tasks', workload: 'Therapist workload', noShow: 'No-show rate', penalties: 'Penalty ranking', rate: 'Rate' },
  errors: {
    NETWORK: 'The network is unavailable; try again later',
    UNAVAILABLE: 'The server is unavailable; try again later',
    UNAUTHENTICATED: 'Wrong username or password, or the session expired',
    FORBIDDEN: 'You are not allowed to do this',
    NOT_FOUND: 'Not found or deleted',
    VALIDATION: 'Please check: {field}',
    CONFLICT: 'Someone else changed this; refresh and retry',
    ALREADY_DECIDED: 'This approval was already decided',
    PRECHECK_FAILED: 'Pre-check failed',
    INSTANCE_CLOSED: 'This approval has ended',
    RATE_LIMITED: 'Too many attempts; try again later',
    ACCOUNT_LOCKED: 'Account locked; try again later',
    NOT_PAID: 'Not paid yet',
    FULLY_BOOKED: 'This slot is fully booked',
    VERSION_NOT_SUPPORTED: 'This app is out of date; please reload',
    INTERNAL: 'Something went wrong on the server',
  },
}
export default en
