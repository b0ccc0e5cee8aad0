import { createApp } from 'vue'
import 'vant/es/toast/style'
import 'vant/es/dialog/style'
import 'vant/es/notify/style'
import App from './App.vue'
import { router } from './router'
import { i18n } from './i18n'
import { watchNetwork } from './stores/network'
import { registerServiceWorker } from './sw-register'
import './styles.css'

document.documentElement.lang = i18n.global.locale.value
createApp(App).use(router).use(i18n).mount('#app')
watchNetwork()
registerServiceWorker()
