import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { session, restoreSession, hasRole, takeHandedCredentials } from './stores/session'
import LoginView from './views/LoginView.vue'
import { platformSignIn } from './platform-signin'
import HomeView from './views/HomeView.vue'

// Screens beyond login and home load on demand, so charts and the signature pad never
// weigh on the first paint.
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true } },
  { path: '/', name: 'home', component: HomeView },
  { path: '/tasks', name: 'tasks', component: () => import('./views/approver/TasksView.vue') },
  { path: '/tasks/:id', name: 'task', component: () => import('./views/approver/TaskDetailView.vue'), props: true },
  { path: '/approvals/:instanceId', name: 'approval', component: () => import('./views/approver/TaskDetailView.vue'), props: true },
  { path: '/surgery', name: 'surgery', component: () => import('./views/surgeon/ApplicationsView.vue') },
  { path: '/surgery/new', name: 'surgery-new', component: () => import('./views/surgeon/ApplyView.vue') },
  { path: '/surgery/:instanceId/amend', name: 'surgery-amend', component: () => import('./views/surgeon/ApplyView.vue'), props: true },
  { path: '/processes', name: 'processes', component: () => import('./views/processes/ProcessesView.vue') },
  { path: '/processes/:definitionKey/new', name: 'process-new', component: () => import('./views/processes/StartProcessView.vue'), props: true },
  { path: '/worklist', name: 'worklist', component: () => import('./views/therapist/WorklistView.vue') },
  { path: '/worklist/:appointmentId/record', name: 'record', component: () => import('./views/therapist/BedsideRecordView.vue'), props: true },
  { path: '/conflicts', name: 'conflicts', component: () => import('./views/therapist/ConflictsView.vue') },
  { path: '/orders', name: 'orders', component: () => import('./views/patient/OrdersView.vue') },
  { path: '/orders/:orderId/book', name: 'book', component: () => import('./views/patient/SlotsView.vue'), props: true },
  { path: '/appointments/:id', name: 'appointment', component: () => import('./views/patient/AppointmentView.vue'), props: true },
  { path: '/follow-up/:id?', name: 'followup', component: () => import('./views/patient/FollowUpView.vue'), props: true },
  { path: '/notices/:id?', name: 'notices', component: () => import('./views/chief/NoticesView.vue'), props: true },
  { path: '/rankings', name: 'rankings', component: () => import('./views/chief/RankingsView.vue') },
  { path: '/dashboard', name: 'dashboard', component: () => import('./views/affairs/DashboardView.vue') },
  { path: '/password', name: 'change-password', component: () => import('./views/ChangePasswordView.vue') },
  { path: '/penalties', name: 'penalties', component: () => import('./views/affairs/PenaltiesView.vue') },
  { path: '/admin', name: 'admin', component: () => import('./views/admin/AdminView.vue') },
  { path: '/access-log', name: 'access-log', component: () => import('./views/admin/AccessLogView.vue') },
  // Where the Official Account's menu and messages lead (bots/wechat_oa.py PAGES): the
  // patient arrives signed in (`#token=`) or with a binding ticket (`#ticket=`).
  // A one-time link from DingTalk / WeCom binding the platform id to the signed-in user.
  { path: '/bind', name: 'bind', component: () => import('./views/BindView.vue'), meta: { noPlatformSignIn: true } },
  { path: '/patient/book', redirect: { name: 'orders' } },
  { path: '/patient/appointments', redirect: { name: 'orders' } },
  { path: '/patient/follow-ups', redirect: { name: 'followup' } },
  { path: '/patient/bind', name: 'patient-bind', component: () => import('./views/patient/PatientBindView.vue'), meta: { public: true } },
  { path: '/:rest(.*)*', redirect: '/' },
]

// `#token=` / `#ticket=` from a platform's sign-in leave the URL before the history reads it.
takeHandedCredentials()
export const router = createRouter({ history: createWebHistory(), routes })

const PATIENT_PAGES = ['orders', 'book', 'appointment', 'followup']

function insideWeChat(): boolean {
  return /MicroMessenger/i.test(navigator.userAgent)
}

router.beforeEach(async (to) => {
  if (!session.restored) await restoreSession()
  if (!to.meta.public && !session.token) {
    // Inside WeChat a patient has no password: the account's own sign-in (web OAuth) again.
    const original = to.redirectedFrom?.fullPath ?? to.fullPath
    if (insideWeChat() && (PATIENT_PAGES.includes(String(to.name)) || original.startsWith('/patient/'))) {
      window.location.assign(`/bots/wechat-oa/oauth?next=${encodeURIComponent(original)}`)
      return false
    }
    // Inside DingTalk or WeCom the platform signs staff in (免登); elsewhere the sign-in page.
    // (Not on the binding page: the platform would only hand out another binding link.)
    if (!to.meta.noPlatformSignIn && (await platformSignIn(to.fullPath))) return true
    return { name: 'login', query: { next: to.fullPath } }
  }
  if (session.me?.mustChangePassword && to.name !== 'change-password') return { name: 'change-password', query: { next: to.fullPath } }
  if (to.name === 'home' && hasRole('patient') && session.me?.roles.length === 1) return { name: 'orders' }
  return true
})
