// Delivery receipts (issue 12): file written on A -> `waitForSync({path})` resolves on A (the
// receipt), next to the file's own arrival on B, in the same run. Two real roots paired through
// an in-process relay, direct profile, inside a private network namespace (re-executes itself
// under `unshare -n`). Prints one JSON line; the target is median write->receipt <= 100 ms.
// Usage: node bench/receipts.mjs [--samples N]   (build first: npm run build, or build:debug)
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'

const samples = Number(process.argv[process.argv.indexOf('--samples') + 1]) || 20
if (!process.env.BOTSYNC_BENCH_INNER) {
  const scratch = mkdtempSync(join(tmpdir(), 'botsync-receipts-'))
  const env = { ...process.env, BOTSYNC_BENCH_INNER: scratch, XDG_DATA_HOME: join(scratch, 'xdg') }
  delete env.BOTSYNC_ROOT
  const run = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${process.argv[1]}" --samples ${samples}`], { env, stdio: 'inherit', timeout: 600_000 })
  rmSync(scratch, { recursive: true, force: true })
  process.exit(run.status ?? 1)
}

const api = createRequire(import.meta.url)('../index.js')
const scratch = process.env.BOTSYNC_BENCH_INNER
const [a, b] = [join(scratch, 'a'), join(scratch, 'b')]
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
const round = (x) => Math.round(x * 10) / 10
const relay = await api.relay({ listen: '127.0.0.1:0', noRateLimits: true })
try {
  const init = await api.init({ root: a, network: 'direct', relay: relay.url })
  await api.join({ code: init.invite.code, root: b, network: 'direct', relay: relay.url, timeoutSeconds: 90 })
  const arrival = []
  const receipt = []
  for (let i = 0; i < samples + 2; i++) {
    const name = `sample-${i}.txt`
    const body = `sample ${i} ${'x'.repeat(1000)}\n`
    const target = join(b, 'deliverables', name)
    let arrivedAt = null
    const t0 = performance.now()
    writeFileSync(join(a, 'deliverables', name), body)
    const watcher = (async () => {
      while (arrivedAt === null) {
        if (existsSync(target) && readFileSync(target, 'utf8') === body) arrivedAt = performance.now()
        else await new Promise((r) => setImmediate(r))
      }
    })()
    await api.waitForSync({ root: a, path: `deliverables/${name}`, timeoutMs: 30_000 })
    const receivedAt = performance.now()
    await watcher
    if (i >= 2) {
      // The first two warm up the connection and the index.
      arrival.push(arrivedAt - t0)
      receipt.push(receivedAt - t0)
    }
    // Past Syncthing's 250 ms pause after each index it sends: closer samples measure that pause
    // (the back-to-back case of bench/latency.sh), not one file's trip and its receipt.
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 200))
  }
  const lag = receipt.map((r, i) => r - arrival[i])
  const report = {
    samples,
    syncthing: init.syncthingVersion,
    writeToArrivalMs: { median: round(median(arrival)), min: round(Math.min(...arrival)), max: round(Math.max(...arrival)) },
    writeToReceiptMs: { median: round(median(receipt)), min: round(Math.min(...receipt)), max: round(Math.max(...receipt)) },
    receiptAfterArrivalMs: { median: round(median(lag)) },
    receiptOverArrival: round(median(receipt) / median(arrival)),
    target: median(receipt) <= 100 ? 'met (median write->receipt <= 100 ms)' : 'MISSED (median write->receipt > 100 ms)',
    receiptSamplesMs: receipt.map(round),
  }
  console.log(JSON.stringify(report))
} finally {
  await Promise.allSettled([api.stop({ root: a }), api.stop({ root: b })])
  await relay.close()
}
