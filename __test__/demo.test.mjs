// The README's "run the main job" command, through the bin shim. Run inside a private network
// namespace (on top of the demo's own loopback-only setup), so nothing can leave the machine.
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'

import { shim } from './helpers.mjs'

function demoRootsLeft() {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('botsync-demo-'))
}

test('botsync demo pairs two roots, syncs a file each way and cleans up', { timeout: 180_000 }, () => {
  const before = new Set(demoRootsLeft())
  const script = `ip link set lo up && exec "${process.execPath}" "${shim}" demo --json`
  const result = spawnSync('unshare', ['-n', 'sh', '-c', script], { encoding: 'utf8', timeout: 170_000 })
  assert.equal(result.status, 0, `demo failed: ${result.stdout}${result.stderr}`)
  const report = JSON.parse(result.stdout)
  assert.match(report.code, /^[a-z]+(-[a-z]+){4}$/)
  for (const key of ['initMs', 'joinMs', 'aToBMs', 'bToAMs', 'totalMs']) {
    assert.ok(Number.isFinite(report[key]) && report[key] > 0, `${key} = ${report[key]}`)
  }
  assert.equal(report.kept, false)
  assert.deepEqual(demoRootsLeft().filter((name) => !before.has(name)), [], 'the demo left its roots behind')
  const running = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout
  assert.ok(!running.includes(report.rootA) && !running.includes(report.rootB), 'the demo left processes running')
})
