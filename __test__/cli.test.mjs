import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'

import { botsync, onlyJson, repoRoot, tempDir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const api = require('../index.js')
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'))

test('--version prints the package version', () => {
  const { code, stdout } = botsync(['--version'])
  assert.equal(code, 0)
  assert.equal(stdout.trim(), `botsync ${pkg.version}`)
  assert.deepEqual(onlyJson(botsync(['--version', '--json']).stdout), { version: pkg.version })
})

test('--help lists every command, and each command has its own help', () => {
  const { code, stdout } = botsync(['--help'])
  assert.equal(code, 0)
  const commands = ['init', 'join', 'invite', 'start', 'stop', 'status', 'doctor', 'relay', 'demo']
  for (const command of commands) {
    assert.match(stdout, new RegExp(`^\\s+${command}\\s`, 'm'), `${command} missing from --help`)
    const sub = botsync([command, '--help'])
    assert.equal(sub.code, 0, `${command} --help failed: ${sub.stderr}`)
    assert.match(sub.stdout, new RegExp(`Usage: botsync ${command}`))
  }
})

test('status --json on a root that was never initialized', (t) => {
  const root = join(tempDir(t), 'sync')
  const { code, stdout } = botsync(['status', '--json', '--root', root])
  assert.equal(code, 0)
  const status = onlyJson(stdout)
  assert.equal(status.initialized, false)
  assert.equal(status.running, false)
  assert.equal(status.root, root)
  assert.equal(status.version, pkg.version)
  for (const key of ['syncthingVersion', 'deviceId', 'folders', 'peers', 'notifications']) {
    assert.ok(key in status, `status --json lacks ${key}`)
  }
})

test('BOTSYNC_ROOT selects the root', (t) => {
  const root = join(tempDir(t), 'from-env')
  const status = onlyJson(botsync(['status', '--json'], { env: { BOTSYNC_ROOT: root } }).stdout)
  assert.equal(status.root, root)
})

test('usage errors exit 2 with one JSON error object', () => {
  const { code, stdout } = botsync(['frobnicate', '--json'])
  assert.equal(code, 2)
  const { error } = onlyJson(stdout)
  assert.equal(error.code, 'BOTSYNC_USAGE')
  assert.match(error.message, /frobnicate/)
  const missing = botsync(['join'])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /CODE/)
})

test('failures exit 1 with a stable code in JSON', () => {
  const { code, stdout } = botsync(['status', '--json'], { env: { BOTSYNC_ROOT: '' } })
  assert.equal(code, 1)
  assert.equal(onlyJson(stdout).error.code, 'BOTSYNC_INVALID_ROOT')
})

test('Node API: status resolves with a plain object', async (t) => {
  const root = join(tempDir(t), 'sync')
  const status = await api.status({ root })
  assert.equal(status.initialized, false)
  assert.equal(status.root, root)
  assert.deepEqual(status.peers, [])
})

test('Node API: errors are Errors with a stable code', async () => {
  const saved = process.env.BOTSYNC_ROOT
  process.env.BOTSYNC_ROOT = ''
  try {
    await assert.rejects(api.status(), (error) => {
      assert.ok(error instanceof Error)
      assert.equal(error.code, 'BOTSYNC_INVALID_ROOT')
      return true
    })
  } finally {
    if (saved === undefined) delete process.env.BOTSYNC_ROOT
    else process.env.BOTSYNC_ROOT = saved
  }
})
