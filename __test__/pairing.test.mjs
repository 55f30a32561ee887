import test from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'

import { canIsolate, repoRoot, runIsolatedChild } from './helpers.mjs'

// Syncthing must never reach beyond loopback from a test: the whole body runs in a fresh network
// namespace (only `lo`, brought up by the child's shell).
test('Node API: init, join, status and stop pair two roots', { skip: !canIsolate && 'needs root for unshare -n' }, (t) => {
  const { result, report, leftovers } = runIsolatedChild(t, join(repoRoot, '__test__', 'pairing-child.mjs'), { prefix: 'botsync-node-pairing-', timeout: 150_000 })
  assert.equal(result.status, 0, `child failed (${result.status} ${result.signal}):\n${result.stdout}\n${result.stderr}`)
  assert.equal(report.paired, 'relay')
  assert.deepEqual(leftovers, [], 'the test left processes running')
})
