import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'

import { shim } from './helpers.mjs'

const require = createRequire(import.meta.url)
const api = require('../index.js')
const DEVICE_ID = 'CCVOXXV-GAHX6WK-DZC7NLH-OEFBA4Y-TQYHIJA-TPDXMF4-NRHXRWQ-EK5F6A5'

async function pairOnce(base) {
  const created = await fetch(`${base}/pair`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: DEVICE_ID }),
  })
  assert.equal(created.status, 201)
  const { code } = await created.json()
  assert.match(code, /^[a-z]+(-[a-z]+){4}$/)
  const first = await fetch(`${base}/pair/${code}`)
  assert.equal(first.status, 200)
  assert.equal((await first.json()).deviceId, DEVICE_ID)
  const second = await fetch(`${base}/pair/${code}`)
  assert.equal(second.status, 404, 'a code is good for one lookup')
  assert.ok((await second.json()).error)
}

test('Node API: relay() serves the pairing API and closes', async () => {
  const handle = await api.relay({ listen: '127.0.0.1:0' })
  try {
    assert.match(handle.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    const banner = await (await fetch(handle.url)).json()
    assert.equal(banner.service, 'botsync-relay')
    await pairOnce(handle.url)
  } finally {
    await handle.close()
  }
  await handle.closed()
  await assert.rejects(fetch(handle.url))
})

test('Node API: a bad listen address rejects with BOTSYNC_USAGE', async () => {
  await assert.rejects(api.relay({ listen: 'not an address' }), { code: 'BOTSYNC_USAGE' })
})

test('CLI: botsync relay --json announces its URL, serves, and ends on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [shim, 'relay', '--listen', '127.0.0.1:0', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => child.exitCode === null && child.kill('SIGKILL'))
  const firstLine = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`relay exited early with ${code}`)))
  })
  const { url } = JSON.parse(firstLine)
  await pairOnce(url)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  child.kill('SIGTERM')
  const { code, signal } = await exited
  assert.ok(signal === 'SIGTERM' || code === 0, `relay ended with ${code}/${signal}`)
})
