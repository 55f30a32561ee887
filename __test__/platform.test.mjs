// The JS loader on platforms botsync does not ship for: one line, exit 1, never a stack trace.
// The platform is faked with a preload that redefines process.platform/arch before bin/botsync.js runs.
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { repoRoot, tempDir } from './helpers.mjs'

function runAs(t, platform, arch, args = ['status']) {
  const preload = join(tempDir(t, 'botsync-platform-'), 'fake-platform.cjs')
  writeFileSync(
    preload,
    `Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platform)} })\n` +
      `Object.defineProperty(process, 'arch', { value: ${JSON.stringify(arch)} })\n`,
  )
  const result = spawnSync(process.execPath, ['--require', preload, join(repoRoot, 'bin', 'botsync.js'), ...args], { encoding: 'utf8' })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

for (const [platform, arch] of [['win32', 'x64'], ['win32', 'arm64'], ['freebsd', 'x64'], ['linux', 'ia32']]) {
  test(`npx botsync on ${platform}-${arch} says it is unsupported in one line and exits 1`, (t) => {
    const { code, stdout, stderr } = runAs(t, platform, arch, ['init', '--json'])
    assert.equal(code, 1)
    assert.equal(stdout, '')
    const lines = stderr.trimEnd().split('\n')
    assert.equal(lines.length, 1, `one line, got: ${stderr}`)
    assert.match(lines[0], /^botsync: .*not supported yet; it runs on macOS and Linux/)
    if (platform === 'win32') assert.match(lines[0], /Windows/)
    assert.doesNotMatch(stderr, /\n\s+at |Error:|binding/, 'no stack trace, no loader error')
  })
}

test('a supported platform goes on to the native CLI', (t) => {
  const { code, stdout } = runAs(t, process.platform, process.arch, ['--version'])
  assert.equal(code, 0)
  assert.match(stdout, /^botsync \d+\.\d+\.\d+/)
})
