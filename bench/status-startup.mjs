// Wall time of `botsync status --json` against `node -e ''`, the floor Node's own start sets.
// Runs the two alternately in one process so machine noise hits both alike, and prints medians
// and the difference. Usage: node bench/status-startup.mjs [--runs N] [--root DIR]
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { runs: { type: 'string', default: '40' }, root: { type: 'string' } } })
const runs = Number(values.runs)
const scratch = mkdtempSync(join(tmpdir(), 'botsync-bench-'))
const root = values.root ?? join(scratch, 'never-initialized')
const shim = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'botsync.js')

function timeMs(args) {
  const start = process.hrtime.bigint()
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}: ${result.stderr}`)
  return ms
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const floor = []
const ours = []
timeMs(['-e', '']) // warm the page cache for both before measuring
timeMs([shim, 'status', '--json', '--root', root])
for (let i = 0; i < runs; i++) {
  floor.push(timeMs(['-e', '']))
  ours.push(timeMs([shim, 'status', '--json', '--root', root]))
}
rmSync(scratch, { recursive: true, force: true })
const report = {
  runs,
  root,
  nodeFloorMedianMs: +median(floor).toFixed(1),
  statusMedianMs: +median(ours).toFixed(1),
  overheadMs: +(median(ours) - median(floor)).toFixed(1),
  ratio: +(median(ours) / median(floor)).toFixed(2),
}
console.log(JSON.stringify(report))
