import test from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'

import { canIsolate, repoRoot, runIsolatedChild } from './helpers.mjs'

// The official TypeScript MCP client (@modelcontextprotocol/sdk) spawns `botsync mcp` for two
// paired roots; the whole body runs in a fresh network namespace (see mcp-child.mjs).
test('MCP: the official TypeScript client drives botsync mcp on two paired roots', { skip: !canIsolate && 'needs root for unshare -n' }, (t) => {
  const { result, report, leftovers } = runIsolatedChild(t, join(repoRoot, '__test__', 'mcp-child.mjs'), { prefix: 'botsync-mcp-', timeout: 240_000 })
  assert.equal(result.status, 0, `child failed (${result.status} ${result.signal}):\n${result.stdout}\n${result.stderr}`)
  for (const part of ['listTools', 'send+wait', 'read', 'events', 'path escapes', 'size caps', 'bad calls']) {
    assert.ok(report.covered.includes(part), `${part} checked: ${result.stdout}`)
  }
  assert.deepEqual(leftovers, [], 'the test left processes running')
})
