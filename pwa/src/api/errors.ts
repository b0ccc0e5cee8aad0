/** The server's text in each language it sent (`extensions.messages`). */
export interface Texts { zh?: string; en?: string }

/** An error from the server or the network, with the server's code (UPPER_SNAKE_CASE). */
export class ApiError extends Error {
  constructor(
    public code: string,
    message: string,
    public field?: string,
    public messages?: Texts,
    public details?: Record<string, unknown>,
  ) {
    super(message)
    this.name = 'ApiError'
  }

  /** The network (or the server) was unreachable: worth retrying later. */
  get temporary(): boolean {
    return this.code === 'NETWORK' || this.code === 'INTERNAL' || this.code === 'UNAVAILABLE'
  }
}
