// GraphQL over fetch with the bearer token. Errors come back as ApiError with the
// server's `extensions.code`; the views turn the code into the user's language.
import { ApiError, type Texts } from './errors'

export type { Texts }

type TokenSource = () => string | null | Promise<string | null>

let tokenSource: TokenSource = () => null
let onUnauthenticated: () => void = () => {}
let endpoint = '/graphql'

export function configureClient(options: { token?: TokenSource; onUnauthenticated?: () => void; endpoint?: string }): void {
  if (options.token) tokenSource = options.token
  if (options.onUnauthenticated) onUnauthenticated = options.onUnauthenticated
  if (options.endpoint) endpoint = options.endpoint
}

export interface GraphQLErrorBody {
  message: string
  extensions?: { code?: string; field?: string; messages?: { zh?: string; en?: string }; [key: string]: unknown }
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}, token?: string | null): Promise<T> {
  const bearer = token === undefined ? await tokenSource() : token
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
  if (bearer) headers.authorization = `Bearer ${bearer}`
  let response: Response
  try {
    response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) })
  } catch {
    throw new ApiError('NETWORK', 'network unreachable')
  }
  if (response.status >= 500) throw new ApiError('UNAVAILABLE', `server ${response.status}`)
  let body: { data?: T; errors?: GraphQLErrorBody[] }
  try {
    body = await response.json()
  } catch {
    throw new ApiError('UNAVAILABLE', 'bad response')
  }
  const first = body.errors?.[0]
  if (first) {
    const code = first.extensions?.code ?? 'INTERNAL'
    if (code === 'UNAUTHENTICATED' && bearer) onUnauthenticated()
    const { code: _code, field, messages, ...details } = first.extensions ?? {}
    throw new ApiError(code, first.message, field, messages, details)
  }
  return body.data as T
}
