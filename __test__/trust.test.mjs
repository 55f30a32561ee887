// The argv-free forms and the membership commands through the bin shim (as `npx botsync` runs
// them) and the Node API, on roots that need no Syncthing: the code really is read from stdin
// and BOTSYNC_CODE, and bad input is one clear error with a stable code.
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'

import { botsync, onlyJson, shim, tempDir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const api = require('../index.js')

function withStdin(args, input, env = {}) {
  const result = spawnSync(process.execPath, [shim, ...args], { input, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

test('join - reads the code from stdin; an empty stdin is a usage error that creates nothing', (t) => {
  const root = join(tempDir(t), 'sync')
  for (const input of ['', '\n', '  \n']) {
    const run = withStdin(['join', '-', '--json', '--root', root], input)
    assert.equal(run.code, 2, run.stderr)
    const { error } = onlyJson(run.stdout)
    assert.equal(error.code, 'BOTSYNC_USAGE')
    assert.match(error.message, /stdin/)
  }
  // Not a code of any kind (words of letters would be an original-protocol code): refused as a
  // code, so stdin really was read.
  const bad = withStdin(['join', '-', '--json', '--root', root], 'not-a-real-code-42\n')
  assert.equal(bad.code, 1, bad.stderr)
  assert.equal(onlyJson(bad.stdout).error.code, 'BOTSYNC_CODE_INVALID')
  assert.equal(existsSync(root), false)
})

test('join with no code reads BOTSYNC_CODE, and says how to give one without it', (t) => {
  const root = join(tempDir(t), 'sync')
  const none = botsync(['join', '--json', '--root', root], { env: { BOTSYNC_CODE: '' } })
  assert.equal(none.code, 2)
  assert.match(onlyJson(none.stdout).error.message, /BOTSYNC_CODE/)
  const bad = botsync(['join', '--json', '--root', root], { env: { BOTSYNC_CODE: 'not-a-real-code-42' } })
  assert.equal(onlyJson(bad.stdout).error.code, 'BOTSYNC_CODE_INVALID')
  assert.equal(existsSync(root), false)
})

test('peers, remove and allow are commands and Node functions with stable error codes', async (t) => {
  const root = join(tempDir(t), 'sync')
  for (const command of [['peers'], ['remove', 'laptop'], ['allow', 'laptop']]) {
    const run = botsync([...command, '--json', '--root', root])
    assert.equal(run.code, 1, `${command}: ${run.stderr}`)
    assert.equal(onlyJson(run.stdout).error.code, 'BOTSYNC_NOT_INITIALIZED')
  }
  const missing = botsync(['remove', '--json', '--root', root])
  assert.equal(missing.code, 2)
  for (const call of [() => api.peers({ root }), () => api.remove({ root, peer: 'laptop' }), () => api.allow({ root, peer: 'laptop' })]) {
    await assert.rejects(call(), (error) => error.code === 'BOTSYNC_NOT_INITIALIZED')
  }
})
