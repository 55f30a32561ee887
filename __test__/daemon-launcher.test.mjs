// The package's `botsync-daemon` is the launcher (src/launcher): it loads the addon next to it and
// runs the daemon's entry from there. These check that it really reaches that entry, and that a
// broken install (addon missing, several, or not loadable) ends in one line naming the fix.
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { repoRoot, tempDir } from './helpers.mjs'

const launcher = join(repoRoot, 'botsync-daemon')
const addon = readdirSync(repoRoot).find((name) => /^botsync\..+\.node$/.test(name))

function run(program, args = []) {
  const result = spawnSync(program, args, { encoding: 'utf8' })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

test('the packaged botsync-daemon runs the daemon entry from the addon next to it', (t) => {
  // Usage and root errors come from src/daemon/entry.rs, inside the addon.
  const usage = run(launcher)
  assert.equal(usage.code, 2, usage.stderr)
  assert.match(usage.stderr, /^usage: botsync-daemon --root=<root>/)
  const notRoot = run(launcher, [`--root=${join(tempDir(t, 'botsync-launcher-'), 'nothing')}`])
  assert.equal(notRoot.code, 1, notRoot.stderr)
  assert.match(notRoot.stderr, /is not a botsync root yet: run `botsync init` first/)
})

test('a launcher without its addon, with two, or with a broken one says so in one line and exits 1', (t) => {
  const alone = tempDir(t, 'botsync-launcher-')
  copyFileSync(launcher, join(alone, 'botsync-daemon'))
  let result = run(join(alone, 'botsync-daemon'), ['--root=/nowhere'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^botsync-daemon: the addon \(botsync\.<platform>\.node\) is missing next to it in .*; reinstall botsync\n$/)

  const broken = tempDir(t, 'botsync-launcher-')
  copyFileSync(launcher, join(broken, 'botsync-daemon'))
  writeFileSync(join(broken, 'botsync.linux-x64-gnu.node'), 'not a shared library')
  result = run(join(broken, 'botsync-daemon'), ['--root=/nowhere'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^botsync-daemon: cannot load .*botsync\.linux-x64-gnu\.node: .*; reinstall botsync\n$/)

  const two = tempDir(t, 'botsync-launcher-')
  copyFileSync(launcher, join(two, 'botsync-daemon'))
  copyFileSync(join(repoRoot, addon), join(two, addon))
  writeFileSync(join(two, 'botsync.other-platform.node'), '')
  result = run(join(two, 'botsync-daemon'), ['--root=/nowhere'])
  assert.equal(result.code, 1)
  assert.match(result.stderr, /^botsync-daemon: more than one addon next to it in .*botsync\.other-platform\.node.*; keep the one for this platform\n$/)
})
