import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { session, restoreSession, hasRole } from './stores/session'
import LoginView from './views/LoginView.vue'
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
  { path: '/:rest(.*)*', redirect: '/' },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  if (!session.restored) await restoreSession()
  if (!to.meta.public && !session.token) return { name: 'login', query: { next: to.fullPath } }
  if (to.name === 'home' && hasRole('patient') && session.me?.roles.length === 1) return { name: 'orders' }
  return true
})
