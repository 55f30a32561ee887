import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..')
export const shim = join(repoRoot, 'bin', 'botsync.js')

/** Runs the CLI through the bin shim, as `npx botsync` would. */
export function botsync(args, { env = {}, cwd } = {}) {
  const result = spawnSync(process.execPath, [shim, ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** Parses stdout that must be exactly one JSON object. */
export function onlyJson(stdout) {
  const lines = stdout.trim().split('\n')
  if (lines.length !== 1) throw new Error(`expected one JSON line, got ${lines.length}: ${stdout}`)
  return JSON.parse(lines[0])
}

export function tempDir(t, prefix = 'botsync-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** PIDs of live processes whose command line mentions `needle`. */
export function processesMentioning(needle) {
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

export const canIsolate = process.getuid?.() === 0 && spawnSync('unshare', ['-n', 'true']).status === 0

/**
 * Runs the script `child` with this Node inside a fresh network namespace (only `lo`, brought up
 * first), so that Syncthing never reaches beyond loopback; `BOTSYNC_PAIRING_SCRATCH` names a
 * scratch directory removed afterwards. Kills whatever the child left running there. Returns the
 * child's result, its last stdout line parsed as JSON, and the PIDs it left behind.
 */
export function runIsolatedChild(t, child, { prefix, timeout }) {
  const scratch = tempDir(t, prefix)
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
    timeout,
  })
  const leftovers = processesMentioning(scratch)
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  const last = result.stdout?.trim().split('\n').pop()
  let report = null
  try {
    report = JSON.parse(last)
  } catch {}
  return { result, report, leftovers }
}
