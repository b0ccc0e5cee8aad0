// A stand-in for the server's side of the sync protocol (issue 6), enough to check the
// device's outbox against it: lastMutationId per client, replays skipped, a gap stops the
// batch, a poison mutation is rejected and still advances the id.
import type { PushRequest, PushResponse } from '../src/offline/outbox'
import { ApiError } from '../src/api/errors'

export class SyncServer {
  lastMutationId = new Map<string, number>()
  applied: { clientId: string; id: number; name: string; args: Record<string, unknown> }[] = []
  inFlight = 0
  maxInFlight = 0
  down = false
  loseNextAck = false
  expired = false
  requests = 0

  push = async (request: PushRequest): Promise<PushResponse> => {
    this.requests += 1
    this.inFlight += 1
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      await new Promise((r) => setTimeout(r, 5))
      if (this.down) throw new ApiError('NETWORK', 'offline')
      if (this.expired) throw new ApiError('UNAUTHENTICATED', 'expired')
      let last = this.lastMutationId.get(request.clientId) ?? 0
      const results: PushResponse['results'] = []
      for (const m of request.mutations) {
        if (m.id <= last) continue
        if (m.id > last + 1) break
        if (m.name === 'poison') {
          results.push({ id: m.id, status: 'REJECTED', code: 'VALIDATION', reason: 'bad args' })
        } else {
          this.applied.push({ clientId: request.clientId, id: m.id, name: m.name, args: m.args })
          results.push({ id: m.id, status: 'APPLIED' })
        }
        last = m.id
      }
      this.lastMutationId.set(request.clientId, last)
      if (this.loseNextAck) {
        this.loseNextAck = false
        throw new ApiError('NETWORK', 'connection dropped after commit')
      }
      return { lastMutationId: last, results }
    } finally {
      this.inFlight -= 1
    }
  }
}
