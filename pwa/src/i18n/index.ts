import { createI18n } from 'vue-i18n'
import zh from './zh-CN'
import en from './en'
import { ApiError, type Texts } from '../api/errors'

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

// Codes the client itself raises, or whose server text says nothing more than the code.
const CLIENT_CODES = new Set(['NETWORK', 'UNAVAILABLE', 'INTERNAL', 'VERSION_NOT_SUPPORTED'])

/** A server text (`{zh, en}`) in the user's language. */
export function localized(texts: Texts | null | undefined, fallback = ''): string {
  if (!texts) return fallback
  return (i18n.global.locale.value === 'en' ? texts.en : texts.zh) || texts.zh || texts.en || fallback
}

/** An error in the user's language: the server's own words when it sent them (they say
 *  what happened, e.g. 用户不存在), else the text for its code. */
export function errorText(err: unknown): string {
  const { t, te } = i18n.global
  if (err instanceof ApiError) {
    if (err.messages && !CLIENT_CODES.has(err.code)) return localized(err.messages)
    const key = `errors.${err.code}`
    if (te(key)) return t(key, { field: err.field ?? '' })
    return err.message
  }
  return t('errors.INTERNAL')
}

/** A status from the server, in the user's language (the raw value when unknown). */
export function statusText(status: string): string {
  const key = `status.${status}`
  return i18n.global.te(key) ? i18n.global.t(key) : status
}

/** A catalog entry's name in the user's language (its English name when it has one). */
export function named(item: { name: string; nameEn?: string | null } | null | undefined): string {
  if (!item) return ''
  return i18n.global.locale.value === 'en' && item.nameEn ? item.nameEn : item.name
}

/** Template labels are data written "中文 / English"; kept for the record templates only.
 *  Server texts arrive split (`localized`). */
export function bilingual(text: string | null | undefined): string {
  if (!text) return ''
  const [zhPart, enPart] = text.split(' / ')
  return i18n.global.locale.value === 'en' && enPart ? enPart : zhPart
}
