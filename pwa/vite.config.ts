/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { VantResolver } from '@vant/auto-import-resolver'
import { VitePWA } from 'vite-plugin-pwa'

// The service worker is our own (src/sw.ts): it precaches the app shell Workbox lists,
// and also handles web push, notification taps and Background Sync of the outbox.
// Vant's icon font is embedded in its CSS as woff2; the same rule also names a copy on a
// public CDN as a fallback. Hospitals' networks and the app's own CSP reach no third
// party, so the fallback is cut out and the app never names a host outside itself.
const noThirdPartyFonts = {
  name: 'bedside-no-third-party-fonts',
  enforce: 'pre' as const,
  transform(code: string, id: string) {
    if (!id.endsWith('.css') || !code.includes('alicdn.com')) return null
    return code.replace(/,\s*url\(\/\/at\.alicdn\.com[^)]*\)\s*format\("woff"\)/g, '')
  },
}

export default defineConfig({
  plugins: [
    noThirdPartyFonts,
    vue(),
    // Vant components are imported per use (with their CSS) so unused ones never ship.
    Components({ resolvers: [VantResolver()], dts: false }),
    VitePWA({
      strategies: 'injectManifest',
      srcDir: 'src',
      filename: 'sw.ts',
      injectRegister: null, // registered from main.ts: the CSP forbids inline scripts
      registerType: 'autoUpdate',
      includeAssets: ['favicon.svg', 'icons/*.png'],
      manifest: {
        id: '/',
        name: 'Bedside 床旁',
        short_name: '床旁',
        description: '手术审批、床旁治疗、预约与通知 / Approvals, bedside treatments, booking and notices',
        lang: 'zh-CN',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        orientation: 'any',
        background_color: '#f7f8fa',
        theme_color: '#1989fa',
        icons: [
          { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: '/icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      injectManifest: {
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest}'],
        // The chart library is large and only medical affairs and chiefs need it: cached on
        // first use (sw.ts) instead of downloaded by every device at install.
        globIgnores: ['**/EChart-*.js'],
        maximumFileSizeToCacheInBytes: 3 * 1024 * 1024,
        rollupFormat: 'iife', // a classic worker script: every browser and webview runs it
      },
      devOptions: { enabled: false },
    }),
  ],
  build: {
    target: 'es2020',
    chunkSizeWarningLimit: 800,
  },
  test: {
    environment: 'node',
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
  },
})
