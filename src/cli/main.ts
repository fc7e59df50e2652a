#!/usr/bin/env node
import { runCli } from './program.js'

// Exit explicitly: the schema engine's WebAssembly leaves a lock-timeout timer
// armed after a migration, which would otherwise hold the process for seconds.
process.exit(await runCli(process.argv.slice(2)))
