// The body of mcp.test.mjs, run by it inside a private network namespace (`unshare -n`): two
// roots paired through the Node API, each served by `botsync mcp` (spawned through the bin shim,
// as `npx botsync mcp` would be) to the official TypeScript MCP client. Prints one JSON line
// with the coverage it checked; throws (exit 1) on the first failed check.
import assert from 'node:assert/strict'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'

const require = createRequire(import.meta.url)
const api = require('../index.js')
const shim = join(import.meta.dirname, '..', 'bin', 'botsync.js')
const scratch = process.env.BOTSYNC_PAIRING_SCRATCH
const rootA = join(scratch, 'a')
const rootB = join(scratch, 'b')
const covered = []

/** A's server is `mcp()` of the Node API in a plain Node process, B's is `botsync mcp` via the bin shim. */
async function connect(root, { nodeApi = false } = {}) {
  const client = new Client({ name: 'botsync-test', version: '1.0.0' })
  const index = join(import.meta.dirname, '..', 'index.js')
  const args = nodeApi ? ['-e', `require(${JSON.stringify(index)}).mcp({ root: ${JSON.stringify(root)} })`] : [shim, 'mcp', '--root', root]
  const transport = new StdioClientTransport({ command: process.execPath, args, env: process.env, stderr: 'inherit' })
  await client.connect(transport)
  return client
}

/** A tool error: `isError` with `{"error":{"code","message"}}` as its text. */
async function toolError(client, name, args) {
  const result = await client.callTool({ name, arguments: args })
  assert.equal(result.isError, true, `${name} ${JSON.stringify(args)} should fail: ${JSON.stringify(result)}`)
  return JSON.parse(result.content[0].text).error
}

/** A refusal of any kind (tool error or JSON-RPC error); the server must keep serving. */
async function refused(client, name, args) {
  try {
    const result = await client.callTool({ name, arguments: args })
    assert.equal(result.isError, true, `${name} ${JSON.stringify(args)} should fail: ${JSON.stringify(result)}`)
    return result.content[0].text
  } catch (error) {
    return String(error.message)
  }
}

async function eventsUntil(client, predicate, what) {
  let cursor = 0
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const { structuredContent: out } = await client.callTool({ name: 'events', arguments: { cursor, waitMs: 2000 } })
    const found = out.events.find(predicate)
    if (found) return { found, cursor: out.cursor }
    cursor = out.cursor
  }
  throw new Error(`timed out waiting for ${what}`)
}

const relay = await api.relay({ listen: '127.0.0.1:0', noRateLimits: true })
let a, b
try {
  const init = await api.init({ root: rootA, network: 'direct', relay: relay.url })
  const joined = await api.join({ code: init.invite.code, root: rootB, network: 'direct', relay: relay.url, timeoutSeconds: 90 })
  a = await connect(rootA, { nodeApi: true })
  b = await connect(rootB)

  const tools = (await a.listTools()).tools
  const names = tools.map((t) => t.name).sort()
  assert.deepEqual(names, ['events', 'invite', 'list', 'read', 'restore', 'send', 'status', 'versions', 'wait_for_delivery'])
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, 'object', tool.name)
    assert.equal(tool.outputSchema?.type, 'object', `${tool.name} has a typed output`)
  }
  covered.push('listTools')

  const status = (await a.callTool({ name: 'status', arguments: {} })).structuredContent
  assert.equal(status.running, true)
  assert.equal(status.peers[0].deviceId, joined.deviceId)
  covered.push('status')

  // B subscribes to its deliverables/ before A sends.
  const updates = []
  b.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri))
  const resources = (await b.listResources()).resources.map((r) => r.uri).sort()
  assert.deepEqual(resources, ['botsync://folder/deliverables', 'botsync://folder/inbox', 'botsync://folder/shared'])
  await b.subscribeResource({ uri: 'botsync://folder/deliverables' })

  const sent = await a.callTool({ name: 'send', arguments: { folder: 'deliverables', path: 'reports/week.md', text: '# week\nall green\n', wait: true, timeoutMs: 30_000 } })
  assert.notEqual(sent.isError, true, JSON.stringify(sent))
  assert.equal(sent.structuredContent.size, 17)
  assert.equal(sent.structuredContent.delivered.peers.length, 1)
  assert.ok(sent.structuredContent.delivered.peers[0].includes(joined.deviceId.slice(0, 7)))
  covered.push('send+wait')
  const binary = Buffer.from([0, 1, 2, 255, 254])
  const sentBinary = await a.callTool({ name: 'send', arguments: { folder: 'shared', path: 'blob.bin', base64: binary.toString('base64') } })
  assert.equal(sentBinary.structuredContent.size, 5)
  const local = join(scratch, 'local.txt')
  writeFileSync(local, 'copied from a local file\n')
  await a.callTool({ name: 'send', arguments: { folder: 'shared', path: 'copied.txt', copyFrom: local } })
  const receipt = await a.callTool({ name: 'wait_for_delivery', arguments: { folder: 'shared', path: 'copied.txt', timeoutMs: 30_000 } })
  assert.equal(receipt.structuredContent.path, 'shared/copied.txt')
  await a.callTool({ name: 'wait_for_delivery', arguments: { folder: 'shared', path: 'blob.bin', timeoutMs: 30_000 } })
  covered.push('wait_for_delivery')

  const read = (await b.callTool({ name: 'read', arguments: { folder: 'deliverables', path: 'reports/week.md' } })).structuredContent
  assert.equal(read.text, '# week\nall green\n')
  assert.equal(read.nextOffset, null)
  const part = (await b.callTool({ name: 'read', arguments: { folder: 'deliverables', path: 'reports/week.md', maxBytes: 6 } })).structuredContent
  assert.equal(part.text, '# week')
  assert.equal(part.nextOffset, 6)
  const rest = (await b.callTool({ name: 'read', arguments: { folder: 'deliverables', path: 'reports/week.md', offset: 6 } })).structuredContent
  assert.equal(rest.text, '\nall green\n')
  const blob = (await b.callTool({ name: 'read', arguments: { folder: 'shared', path: 'blob.bin', encoding: 'base64' } })).structuredContent
  assert.deepEqual(Buffer.from(blob.base64, 'base64'), binary)
  assert.equal((await toolError(b, 'read', { folder: 'shared', path: 'blob.bin' })).code, 'BOTSYNC_USAGE', 'binary as text')
  covered.push('read')

  const listed = (await b.callTool({ name: 'list', arguments: { folder: 'deliverables' } })).structuredContent
  const week = listed.files.find((f) => f.path === 'reports/week.md')
  assert.ok(week, JSON.stringify(listed))
  assert.equal(week.size, 17)
  assert.ok(week.lastChangedBy.includes(init.deviceId.slice(0, 7)), `B sees A changed it: ${week.lastChangedBy}`)
  const mine = (await a.callTool({ name: 'list', arguments: { folder: 'deliverables', path: 'reports' } })).structuredContent
  assert.equal(mine.files[0].lastChangedBy, 'this machine')
  const resource = await b.readResource({ uri: 'botsync://folder/deliverables' })
  assert.ok(JSON.parse(resource.contents[0].text).files.some((f) => f.path === 'reports/week.md'))
  covered.push('list', 'resources')

  const arrived = await eventsUntil(b, (e) => e.type === 'file' && e.path === 'reports/week.md', 'the file event on B')
  assert.equal(arrived.found.folder, 'deliverables')
  assert.equal(arrived.found.peer.deviceId, init.deviceId)
  const delivered = await eventsUntil(a, (e) => e.type === 'delivered' && e.path === 'reports/week.md', 'the delivered event on A')
  assert.equal(delivered.found.peer.deviceId, joined.deviceId)
  const later = (await b.callTool({ name: 'events', arguments: { cursor: arrived.cursor } })).structuredContent
  assert.ok(later.cursor >= arrived.cursor)
  assert.equal((await toolError(b, 'events', { cursor: 1_000_000 })).code, 'BOTSYNC_USAGE')
  covered.push('events')
  const deadline = Date.now() + 10_000
  while (!updates.includes('botsync://folder/deliverables') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  assert.ok(updates.includes('botsync://folder/deliverables'), `resource update notification: ${updates}`)
  covered.push('resource notifications')

  // Versions: A overwrites, B lists and restores, the restored file reaches A again.
  await a.callTool({ name: 'send', arguments: { folder: 'shared', path: 'copied.txt', text: 'overwritten\n', wait: true, timeoutMs: 30_000 } })
  const versions = (await b.callTool({ name: 'versions', arguments: { folder: 'shared', path: 'copied.txt' } })).structuredContent
  assert.equal(versions.versions.length, 1)
  assert.equal(versions.versions[0].size, 25)
  const restored = (await b.callTool({ name: 'restore', arguments: { folder: 'shared', path: 'copied.txt' } })).structuredContent
  assert.equal(restored.restored.versionTime, versions.versions[0].versionTime)
  await b.callTool({ name: 'wait_for_delivery', arguments: { folder: 'shared', path: 'copied.txt', timeoutMs: 30_000 } })
  assert.equal((await a.callTool({ name: 'read', arguments: { folder: 'shared', path: 'copied.txt' } })).structuredContent.text, 'copied from a local file\n')
  assert.equal((await toolError(b, 'restore', { folder: 'shared', path: 'never.txt' })).code, 'BOTSYNC_NOT_FOUND')
  assert.equal((await toolError(b, 'restore', { folder: 'shared', path: 'copied.txt', at: '2000-01-01T00:00:00Z' })).code, 'BOTSYNC_NOT_FOUND')
  assert.equal((await toolError(b, 'versions', { folder: 'shared', path: '../x' })).code, 'BOTSYNC_PATH_REFUSED')
  covered.push('versions', 'restore')

  const invite = (await a.callTool({ name: 'invite', arguments: { offline: true } })).structuredContent
  assert.equal(invite.kind, 'offline')
  assert.ok(invite.code.length > 20)
  covered.push('invite')

  // Every path escape, for reads and writes, on every path-taking tool.
  mkdirSync(join(rootB, 'shared', 'sub'), { recursive: true })
  symlinkSync('/etc', join(rootB, 'shared', 'out'))
  symlinkSync('/etc/hostname', join(rootB, 'shared', 'sub', 'host'))
  const escapes = ['../outside.txt', 'a/../../outside.txt', '/etc/passwd', '.stversions/copied.txt', '.stfolder', '.stignore', '.botsync/config.json', 'out/passwd', 'sub/host', 'nul\u0000byte']
  for (const path of escapes) {
    assert.equal((await toolError(b, 'read', { folder: 'shared', path })).code, 'BOTSYNC_PATH_REFUSED', `read ${path}`)
    assert.equal((await toolError(b, 'send', { folder: 'shared', path, text: 'x' })).code, 'BOTSYNC_PATH_REFUSED', `send ${path}`)
    assert.equal((await toolError(b, 'wait_for_delivery', { folder: 'shared', path, timeoutMs: 100 })).code, 'BOTSYNC_PATH_REFUSED', `wait ${path}`)
    assert.equal((await toolError(b, 'restore', { folder: 'shared', path })).code, 'BOTSYNC_PATH_REFUSED', `restore ${path}`)
  }
  assert.equal((await toolError(b, 'list', { folder: 'shared', path: 'out' })).code, 'BOTSYNC_PATH_REFUSED')
  assert.equal((await toolError(b, 'send', { folder: 'shared', path: 'x.txt', copyFrom: join(rootB, '.botsync', 'config.json') })).code, 'BOTSYNC_PATH_REFUSED')
  covered.push('path escapes')

  // Oversized input and output.
  const big = 'x'.repeat(8 * 1024 * 1024 + 1)
  assert.equal((await toolError(b, 'send', { folder: 'shared', path: 'big.txt', text: big })).code, 'BOTSYNC_TOO_LARGE')
  assert.equal((await toolError(b, 'read', { folder: 'shared', path: 'copied.txt', maxBytes: 2 * 1024 * 1024 })).code, 'BOTSYNC_TOO_LARGE')
  covered.push('size caps')

  // Bad calls: unknown tools, wrong types, missing or extra fields, inbox is read-only.
  const bad = [
    ['no_such_tool', {}],
    ['send', { folder: 'shared', path: 42, text: 'x' }],
    ['send', { folder: 'inbox', path: 'x.txt', text: 'x' }],
    ['send', { folder: 'shared', path: 'x.txt' }],
    ['send', { folder: 'shared', path: 'x.txt', text: 'x', base64: 'eA==' }],
    ['send', { folder: 'shared', path: 'x.txt', base64: '%%%' }],
    ['read', { folder: 'shared' }],
    ['read', { folder: 'nowhere', path: 'x' }],
    ['events', { cursor: 'soon' }],
    ['status', { unexpected: true }],
    ['wait_for_delivery', { folder: 'shared', path: 'nope.txt', timeoutMs: 100 }],
  ]
  for (const [name, args] of bad) {
    const message = await refused(b, name, args)
    assert.ok(message.length > 0, `${name} ${JSON.stringify(args)}`)
  }
  assert.equal((await toolError(b, 'wait_for_delivery', { folder: 'shared', path: 'nope.txt', timeoutMs: 100 })).code, 'BOTSYNC_NOT_FOUND')
  const still = await b.callTool({ name: 'status', arguments: {} })
  assert.equal(still.structuredContent.running, true, 'the server keeps serving')
  covered.push('bad calls')

  console.log(JSON.stringify({ covered }))
} finally {
  await Promise.allSettled([a?.close(), b?.close()])
  await Promise.allSettled([api.stop({ root: rootA }), api.stop({ root: rootB })])
  await relay.close()
}
