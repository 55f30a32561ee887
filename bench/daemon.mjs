// bench/daemon.mjs - issue 5: what botsync's own background process (`botsync-daemon`) costs,
// and how fast it tells OpenClaw about a file. Run through bench/daemon.sh, which puts it in a
// private network namespace (loopback only).
//
// Setup: a relay (`botsync relay`), root A (`init --network direct`), root B (`join`) whose
// environment has OPENCLAW_HOOKS_TOKEN / OPENCLAW_HOOKS_URL pointing at a fake OpenClaw gateway
// in this process (127.0.0.1, records the arrival time of every POST).
// Measures:
//   1. VmRSS / VmHWM (from /proc) of each root's daemon, and of its Syncthing worker and monitor,
//      at idle after pairing, then again after syncing SMALL_N x 4 KiB files and a BIG_MIB file.
//   2. Webhook delay on B: file renamed into place in B/shared (seen by fs.watch) -> POST naming
//      it arrives at the gateway, minus the notifier's debounce (2 s, a fixed design choice).
//      One file at a time (SAMPLES), so every batch holds exactly one file.
// Env: SAMPLES=10 SMALL_N=2000 BIG_MIB=64 DEBOUNCE_MS=2000
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, watch, existsSync, mkdirSync, renameSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'

const env = (name, fallback) => Number(process.env[name] ?? fallback)
const SAMPLES = env('SAMPLES', 10)
const SMALL_N = env('SMALL_N', 2000)
const BIG_MIB = env('BIG_MIB', 64)
const DEBOUNCE_MS = env('DEBOUNCE_MS', 2000)
const HERE = join(dirname(fileURLToPath(import.meta.url)), '..')
const SHIM = join(HERE, 'bin', 'botsync.js')
const RELAY_PORT = 18787
const HOOKS_PORT = 18789
const RELAY = `http://127.0.0.1:${RELAY_PORT}`
const TOKEN = 'bench-token-' + randomBytes(6).toString('hex')

if (process.env.BENCH_INNER !== '1') {
  console.error('run bench/daemon.sh (it provides the private network namespace)')
  process.exit(2)
}

const work = mkdtempSync(join(tmpdir(), 'botsync-bench-daemon-'))
const rootA = join(work, 'root-A')
const rootB = join(work, 'root-B')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// Child env without any OpenClaw settings (A must not notify), and B's with them.
const baseEnv = { ...process.env }
delete baseEnv.OPENCLAW_HOOKS_TOKEN
delete baseEnv.OPENCLAW_HOOKS_URL
const envB = { ...baseEnv, OPENCLAW_HOOKS_TOKEN: TOKEN, OPENCLAW_HOOKS_URL: `http://127.0.0.1:${HOOKS_PORT}/hooks/agent` }

function cli(args, childEnv = baseEnv) {
  const r = spawnSync(process.execPath, [SHIM, ...args, '--json'], { encoding: 'utf8', env: childEnv })
  if (r.status !== 0) throw new Error(`botsync ${args.join(' ')} exited ${r.status}: ${r.stdout} ${r.stderr}`)
  return JSON.parse(r.stdout)
}

// --- the fake OpenClaw gateway ---------------------------------------------------------------
const posts = []
let postWaiters = []
const gateway = createServer((req, res) => {
  const arrived = performance.now()
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    const authorized = req.headers.authorization === `Bearer ${TOKEN}`
    let message = ''
    try {
      message = JSON.parse(body).message ?? ''
    } catch {}
    posts.push({ arrived, message, authorized, path: req.url })
    res.writeHead(authorized ? 200 : 401, { 'content-type': 'application/json' }).end('{"ok":true}')
    postWaiters = postWaiters.filter((w) => !w())
  })
})
await new Promise((r) => gateway.listen(HOOKS_PORT, '127.0.0.1', r))
const waitPost = (pred, timeoutMs) =>
  new Promise((resolve) => {
    const hit = posts.find(pred)
    if (hit) return resolve(hit)
    const timer = setTimeout(() => resolve(null), timeoutMs)
    postWaiters.push(() => {
      const found = posts.find(pred)
      if (found) {
        clearTimeout(timer)
        resolve(found)
      }
      return !!found
    })
  })

// --- processes, cleaned up by PID ------------------------------------------------------------
let relay = null
function cleanup() {
  for (const root of [rootA, rootB]) {
    if (existsSync(join(root, '.botsync'))) spawnSync(process.execPath, [SHIM, '--root', root, 'stop'], { env: baseEnv })
  }
  if (relay && relay.exitCode === null) relay.kill('SIGTERM')
  gateway.close()
  rmSync(work, { recursive: true, force: true })
}
process.on('SIGINT', () => process.exit(130))
process.on('SIGTERM', () => process.exit(143))
process.on('exit', () => {
  try {
    cleanup()
  } catch {}
})

function status(path, key) {
  try {
    const line = readFileSync(`/proc/${path}/status`, 'utf8').split('\n').find((l) => l.startsWith(key + ':'))
    return line ? Number(line.split(/\s+/)[1]) : null
  } catch {
    return null
  }
}
function ppid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return null
  }
}
function processesOf(root) {
  const daemon = cli(['--root', root, 'status']).daemon.pid
  const monitor = JSON.parse(readFileSync(join(root, '.botsync', 'syncthing.pid'), 'utf8')).monitor
  const worker = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .find((p) => ppid(p) === monitor)
  return { daemon, monitor, worker }
}
const mib = (kib) => (kib == null ? '?' : (kib / 1024).toFixed(1))
function memory(label, procs) {
  const row = {}
  for (const [side, p] of Object.entries(procs)) {
    row[side] = {
      daemonRss: status(p.daemon, 'VmRSS'),
      daemonHwm: status(p.daemon, 'VmHWM'),
      workerRss: status(p.worker, 'VmRSS'),
      monitorRss: status(p.monitor, 'VmRSS'),
    }
  }
  console.log(
    `  ${label.padEnd(28)} daemon A ${mib(row.A.daemonRss)} / B ${mib(row.B.daemonRss)} MiB (peak ${mib(row.A.daemonHwm)} / ${mib(row.B.daemonHwm)}); ` +
      `Syncthing worker A ${mib(row.A.workerRss)} / B ${mib(row.B.workerRss)}, monitor ${mib(row.A.monitorRss)} / ${mib(row.B.monitorRss)} MiB`,
  )
  return row
}

// --- arrivals on B ---------------------------------------------------------------------------
const landed = new Map() // name -> performance.now() when first seen complete in B/shared
function watchLandings(dir) {
  return watch(dir, (event, name) => {
    if (!name || name.startsWith('.syncthing.') || landed.has(name)) return
    if (existsSync(join(dir, name))) landed.set(name, performance.now())
  })
}
async function waitUntil(check, timeoutMs, stepMs = 5) {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) return false
    await sleep(stepMs)
  }
  return true
}

const stats = (xs) => {
  if (!xs.length) return 'n=0'
  const s = [...xs].sort((a, b) => a - b)
  const q = (p) => s[Math.round((s.length - 1) * p)]
  return `min ${s[0].toFixed(0)} / med ${q(0.5).toFixed(0)} / p90 ${q(0.9).toFixed(0)} / max ${s[s.length - 1].toFixed(0)} ms (n=${s.length})`
}

// --- run -------------------------------------------------------------------------------------
relay = spawn(process.execPath, [SHIM, 'relay', '--listen', `127.0.0.1:${RELAY_PORT}`, '--no-rate-limits'], {
  env: baseEnv,
  stdio: 'ignore',
})
await waitUntil(() => spawnSync('curl', ['-s', '-o', '/dev/null', `${RELAY}/`]).status === 0, 15000, 50)

const init = cli(['--root', rootA, 'init', '--network', 'direct', '--relay', RELAY, '--no-wait'])
const joined = cli(['--root', rootB, 'join', init.invite.code, '--network', 'direct', '--relay', RELAY], envB)
console.log(`paired: join connected after ${joined.connectedMs} ms`)
const procs = { A: processesOf(rootA), B: processesOf(rootB) }
const sendDir = join(rootA, 'shared')
const recvDir = join(rootB, 'shared')
const watcher = watchLandings(recvDir)

// Let pairing/connection notifications go out and everything settle before "idle".
await sleep(8000)
console.log('=== daemon memory (VmRSS from /proc) ===')
const idle = memory('idle after pairing', procs)

console.log(`=== webhook delay on B (file on disk -> POST), ${SAMPLES} single-file batches, debounce ${DEBOUNCE_MS} ms excluded ===`)
const raw = []
const net = []
let missing = 0
for (let i = 0; i < SAMPLES; i++) {
  const name = `hook-${String(i).padStart(3, '0')}.bin`
  writeFileSync(join(sendDir, name), randomBytes(1024))
  const arrivedOnB = await waitUntil(() => landed.has(name), 30000)
  const post = arrivedOnB ? await waitPost((p) => p.message.includes(name), 30000) : null
  if (!post || !post.authorized) {
    missing++
    console.log(`  ${name}: ${!arrivedOnB ? 'never reached B' : !post ? 'no POST within 30 s' : 'POST without the token'}`)
    continue
  }
  const total = post.arrived - landed.get(name)
  raw.push(total)
  net.push(total - DEBOUNCE_MS)
  await sleep(300 + Math.random() * 700)
}
console.log(`  on disk -> POST (raw)           ${stats(raw)}`)
console.log(`  minus debounce                  ${stats(net)}${missing ? `  (${missing} missing)` : ''}`)

console.log(`=== syncing ${SMALL_N} x 4 KiB + one ${BIG_MIB} MiB file A -> B ===`)
const stage = join(work, 'stage')
mkdirSync(join(stage, 'many'), { recursive: true })
const pool = randomBytes(SMALL_N * 4096)
for (let i = 0; i < SMALL_N; i++) writeFileSync(join(stage, 'many', `f${String(i).padStart(5, '0')}`), pool.subarray(i * 4096, (i + 1) * 4096))
const big = Buffer.alloc(BIG_MIB * 1024 * 1024)
for (let off = 0; off < big.length; off += 1 << 20) randomBytes(1 << 20).copy(big, off)
writeFileSync(join(stage, 'big.bin'), big)
const t0 = performance.now()
renameSync(join(stage, 'many'), join(sendDir, 'many'))
renameSync(join(stage, 'big.bin'), join(sendDir, 'big.bin'))
const count = () => {
  try {
    return readdirSync(join(recvDir, 'many')).filter((n) => !n.startsWith('.syncthing.')).length
  } catch {
    return 0
  }
}
const synced = await waitUntil(() => count() === SMALL_N && landed.has('big.bin'), 600000, 50)
console.log(`  ${synced ? `on B after ${((performance.now() - t0) / 1000).toFixed(1)} s` : 'NOT synced within 600 s'}`)
// The notifier's batch for them, then quiet.
await waitPost((p) => p.arrived > t0 && /files synced|big\.bin|many/.test(p.message), 60000)
await sleep(8000)
const busy = memory('idle after the sync', procs)
watcher.close()

const worst = (rows, key) => Math.max(...Object.values(rows).map((r) => r[key] ?? 0))
const daemonMax = Math.max(worst(idle, 'daemonRss'), worst(busy, 'daemonRss'))
const daemonPeak = Math.max(worst(idle, 'daemonHwm'), worst(busy, 'daemonHwm'))
console.log('=== summary ===')
console.log(`  botsync-daemon VmRSS, largest of A/B, idle and after sync: ${mib(daemonMax)} MiB (peak VmHWM ${mib(daemonPeak)} MiB)`)
console.log(`  target: <= 20 MiB beyond Syncthing: ${daemonMax / 1024 <= 20 ? 'met' : 'MISSED'}; the original's Node processes: ~52 + 58 MiB`)
console.log(`  webhook delay beyond the debounce, median: ${net.length ? stats(net).split(' / ')[1] : 'n/a'}`)
console.log(`  POSTs received by the gateway: ${posts.length} (${posts.filter((p) => !p.authorized).length} without the token)`)
process.exit(synced && missing === 0 ? 0 : 1)
