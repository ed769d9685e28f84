#!/usr/bin/env node
// The CLI runs from the compiled output (`npm ci` builds it through the `prepare` script).
import { main } from '../dist/src/cli/main.js'

process.exitCode = await main(process.argv)
