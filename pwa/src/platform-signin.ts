// Sign-in inside DingTalk and WeCom (免登): the platform says who is using the app, the
// server matches them to their bound Bedside user (bots/signin.py).
//
// DingTalk: JSAPI `runtime.permission.requestAuthCode({corpId})` gives a one-time code
// (5 minutes), which `/bots/dingtalk/login` exchanges. The JSAPI is the global `dd` when
// the page includes DingTalk's own script, else the dingtalk-jsapi package, loaded only
// inside DingTalk. WeCom: the server's web OAuth round trip (`/bots/wecom/oauth`), which
// comes back with `#token=` like the Official Account's.
import { adoptToken } from './stores/session'

interface SigninConfig {
  dingtalkCorpId: string | null
  wecom: boolean
}

export function insideDingTalk(): boolean {
  return /DingTalk/i.test(navigator.userAgent)
}

export function insideWeCom(): boolean {
  return /wxwork/i.test(navigator.userAgent)
}

async function signinConfig(): Promise<SigninConfig | null> {
  try {
    const response = await fetch('/bots/signin-config')
    return response.ok ? ((await response.json()) as SigninConfig) : null
  } catch {
    return null
  }
}

type RequestAuthCode = (params: { corpId: string }) => Promise<{ code: string }>

async function dingtalkAuthCode(corpId: string): Promise<string> {
  const global = (window as unknown as { dd?: { runtime?: { permission?: { requestAuthCode?: (o: unknown) => unknown } } } }).dd
  const legacy = global?.runtime?.permission?.requestAuthCode
  if (legacy) {
    // dingtalk.open.js style: callbacks
    return new Promise((resolve, reject) => {
      legacy({ corpId, onSuccess: (r: { code: string }) => resolve(r.code), onFail: (e: unknown) => reject(e) })
    })
  }
  const module = await import('dingtalk-jsapi/api/runtime/permission/requestAuthCode')
  const requestAuthCode = module.default as unknown as RequestAuthCode
  return (await requestAuthCode({ corpId })).code
}

/**
 * Try the platform's sign-in for `next` (the page the user opened). Resolves true when
 * signed in here, false when not possible; a page change (WeCom's OAuth, a binding link)
 * leaves it pending while the browser navigates.
 */
export async function platformSignIn(next: string): Promise<boolean> {
  if (!insideDingTalk() && !insideWeCom()) return false
  const config = await signinConfig()
  if (!config) return false
  if (insideDingTalk() && config.dingtalkCorpId) {
    try {
      const code = await dingtalkAuthCode(config.dingtalkCorpId)
      const response = await fetch('/bots/dingtalk/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      })
      const body = await response.json()
      if (body.token) {
        await adoptToken(body.token)
        return true
      }
      if (body.bindUrl) {
        window.location.assign(body.bindUrl)
        return new Promise<boolean>(() => {})
      }
    } catch {
      return false // not really inside DingTalk, or the code was refused: the sign-in page
    }
    return false
  }
  if (insideWeCom() && config.wecom) {
    window.location.assign(`/bots/wecom/oauth?next=${encodeURIComponent(next)}`)
    return new Promise<boolean>(() => {})
  }
  return false
}
