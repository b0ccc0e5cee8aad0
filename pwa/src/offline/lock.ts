// One push at a time, across the page and the service worker where the browser has Web
// Locks, else within this JavaScript context. Two concurrent pushes of the same queue
// would be harmless to the server (replays are skipped) but waste the radio.
let chain: Promise<unknown> = Promise.resolve()

export function exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks
  if (locks?.request) return locks.request(name, work) as Promise<T>
  const run = chain.then(work, work)
  chain = run.catch(() => undefined)
  return run
}
