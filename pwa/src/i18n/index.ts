import { createI18n } from 'vue-i18n'
import zh from './zh-CN'
import en from './en'
import { ApiError } from '../api/errors'

const saved = typeof localStorage !== 'undefined' ? localStorage.getItem('bedside.locale') : null

export const i18n = createI18n({
  legacy: false,
  locale: saved === 'en' ? 'en' : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zh, en },
})

export function toggleLocale(): void {
  const next = i18n.global.locale.value === 'en' ? 'zh-CN' : 'en'
  i18n.global.locale.value = next
  localStorage.setItem('bedside.locale', next)
  document.documentElement.lang = next
}

/** An error in the user's language, from its code; the server's text when the code is new to us. */
export function errorText(err: unknown): string {
  const { t, te } = i18n.global
  if (err instanceof ApiError) {
    const key = `errors.${err.code}`
    if (te(key)) return t(key, { field: err.field ?? '' })
    // The server's messages are "中文 / English".
    const [zhPart, enPart] = err.message.split(' / ')
    return i18n.global.locale.value === 'en' && enPart ? enPart : zhPart
  }
  return t('errors.INTERNAL')
}

/** A status from the server, in the user's language (the raw value when unknown). */
export function statusText(status: string): string {
  const key = `status.${status}`
  return i18n.global.te(key) ? i18n.global.t(key) : status
}

/** "中文 / English" labels from the server's data, in the user's language. */
export function bilingual(text: string | null | undefined): string {
  if (!text) return ''
  const [zhPart, enPart] = text.split(' / ')
  return i18n.global.locale.value === 'en' && enPart ? enPart : zhPart
}
