#!/usr/bin/env node
'use strict'
// The whole CLI lives in Rust; this shim only forwards argv and exits with the status it returns.
// Platforms without a build get one line and exit 1 before the native loader runs (it would
// otherwise fail with a stack trace about a missing binding).
const SUPPORTED = { darwin: ['x64', 'arm64'], linux: ['x64', 'arm64'] }
if (!(SUPPORTED[process.platform] || []).includes(process.arch)) {
  const where = process.platform === 'win32' ? 'Windows is not supported yet' : `${process.platform}-${process.arch} is not supported yet`
  process.stderr.write(`botsync: ${where}; it runs on macOS and Linux (x64, arm64), e.g. inside WSL2 on Windows\n`)
  process.exit(1)
}

const { runCli } = require('../index.js')

runCli(process.argv.slice(1)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`botsync: ${err && err.message ? err.message : err}\n`)
    process.exit(1)
  },
)
