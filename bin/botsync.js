#!/usr/bin/env node
'use strict'
// The whole CLI lives in Rust; this shim only forwards argv and exits with the status it returns.
const { runCli } = require('../index.js')

runCli(process.argv.slice(1)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`botsync: ${err && err.message ? err.message : err}\n`)
    process.exit(1)
  },
)
