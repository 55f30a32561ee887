import test from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { repoRoot, tempDir } from './helpers.mjs'

const child = join(repoRoot, '__test__', 'mcp-child.mjs')

/** PIDs of live processes whose command line mentions `needle`. */
function processesMentioning(needle) {
  const found = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0]
      if (cmdline.includes(needle) && state !== 'Z') found.push(Number(entry))
    } catch {}
  }
  return found
}

const canIsolate = process.getuid?.() === 0 && spawnSync('unshare', ['-n', 'true']).status === 0

// Syncthing must never reach beyond loopback from a test: the whole body runs in a fresh network
// namespace (only `lo`, brought up by the child's shell).
test('MCP: the official TypeScript client drives botsync mcp on two paired roots', { skip: !canIsolate && 'needs root for unshare -n' }, (t) => {
  const scratch = tempDir(t, 'botsync-mcp-')
  const env = {
    ...process.env,
    BOTSYNC_PAIRING_SCRATCH: scratch,
    BOTSYNC_SYNCTHING: '/usr/bin/syncthing',
    XDG_DATA_HOME: join(scratch, 'xdg-data'),
  }
  for (const name of ['BOTSYNC_ROOT', 'BOTSYNC_RELAY', 'BOTSYNC_DAEMON_BIN']) delete env[name]
  const result = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${child}"`], {
    env,
    encoding: 'utf8',
    timeout: 240_000,
  })
  const leftovers = processesMentioning(scratch)
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  assert.equal(result.status, 0, `child failed (${result.status} ${result.signal}):\n${result.stdout}\n${result.stderr}`)
  const report = JSON.parse(result.stdout.trim().split('\n').pop())
  assert.ok(report.covered.includes("bad calls"), result.stdout)
  assert.deepEqual(leftovers, [], 'the test left processes running')
})
