import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
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
