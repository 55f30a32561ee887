// Installs the packed packages into an empty project the way a user's `npm install botsync`
// does: the main tarball brings in this platform's package through optionalDependencies.
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'

import { repoRoot, tempDir } from './helpers.mjs'

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'))

test('packed packages install as a user would and run', { timeout: 300_000 }, (t) => {
  const work = tempDir(t, 'botsync-pack-')
  const tarballs = execFileSync('bash', [join(repoRoot, 'scripts/pack.sh'), join(work, 'dist')], { encoding: 'utf8' })
    .trim()
    .split('\n')
  const main = tarballs.find((p) => /^botsync-\d/.test(basename(p)))
  const platform = tarballs.find((p) => p !== main)
  const platformName = basename(platform).replace(/-\d+\.\d+\.\d+.*$/, '')

  const app = join(work, 'app')
  execFileSync('mkdir', ['-p', app])
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'agent-app',
      private: true,
      dependencies: { botsync: `file:${main}` },
      // Stands in for the registry: resolves the optional dependency to the local tarball.
      overrides: { [platformName]: `file:${platform}` },
    }),
  )
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--offline'], { cwd: app, encoding: 'utf8' })
  assert.equal(install.status, 0, install.stderr)
  assert.ok(existsSync(join(app, 'node_modules', platformName, 'botsync-daemon')), 'platform package lacks the daemon')

  const env = { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '' }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const version = spawnSync('npx', ['--yes', 'botsync', '--version'], { cwd: app, env, encoding: 'utf8' })
  assert.equal(version.status, 0, version.stderr)
  assert.equal(version.stdout.trim(), `botsync ${pkg.version}`)

  const root = join(work, 'sync')
  const script = `require('botsync').status({ root: ${JSON.stringify(root)} }).then((s) => console.log(JSON.stringify(s)))`
  const required = spawnSync(process.execPath, ['-e', script], { cwd: app, env, encoding: 'utf8' })
  assert.equal(required.status, 0, required.stderr)
  const status = JSON.parse(required.stdout)
  assert.equal(status.initialized, false)
  assert.equal(status.root, root)
  // The addon must come from the platform package, not from the repository checkout.
  const loadedFrom = spawnSync(
    process.execPath,
    ['-e', `require('botsync'); console.log(Object.keys(require.cache).find((p) => p.endsWith('.node')))`],
    { cwd: app, env, encoding: 'utf8' },
  ).stdout.trim()
  assert.ok(loadedFrom.startsWith(join(app, 'node_modules', platformName)), loadedFrom)
})
