// The body of pairing.test.mjs, run by it inside a private network namespace (`unshare -n`):
// two roots with the direct profile and a relay, all through the Node API. Prints one JSON line
// with what it saw; throws (exit 1) on the first failed check.
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const api = require('../index.js')
const scratch = process.env.BOTSYNC_PAIRING_SCRATCH
const rootA = join(scratch, 'a')
const rootB = join(scratch, 'b')

async function eventually(what, check, timeoutMs = 60_000) {
  const started = Date.now()
  for (;;) {
    if (await check()) return
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const relay = await api.relay({ listen: '127.0.0.1:0', noRateLimits: true })
try {
  const init = await api.init({ root: rootA, network: 'direct', relay: relay.url })
  assert.equal(init.invite.kind, 'relay')
  const joined = await api.join({ code: init.invite.code, root: rootB, network: 'direct', relay: relay.url, timeoutSeconds: 90 })
  assert.equal(joined.peer.deviceId, init.deviceId)

  writeFileSync(join(rootA, 'shared', 'from-node.txt'), 'written through the Node API\n')
  const arrived = join(rootB, 'shared', 'from-node.txt')
  await eventually('the file on B', () => existsSync(arrived) && readFileSync(arrived, 'utf8') === 'written through the Node API\n')

  const status = await api.status({ root: rootA })
  const peer = status.peers.find((p) => p.deviceId === joined.deviceId)
  assert.ok(peer && peer.connected, `A lists B connected: ${JSON.stringify(status.peers)}`)

  const stopped = await Promise.all([api.stop({ root: rootA }), api.stop({ root: rootB })])
  assert.ok(stopped.every((s) => s.stopped))
  const after = await api.status({ root: rootA })
  assert.equal(after.running, false)
  assert.equal(after.daemon.running, false)
  console.log(JSON.stringify({ paired: joined.kind, peer: peer.deviceId, connectedMs: joined.connectedMs }))
} finally {
  await Promise.allSettled([api.stop({ root: rootA }), api.stop({ root: rootB })])
  await relay.close()
}
