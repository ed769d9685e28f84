// Writes the scenario JSON Schema for editors (yaml-language-server) from the compiled source.
import * as fs from 'node:fs'
import { scenarioSchema } from '../dist/src/scenario/schema.js'

fs.mkdirSync(new URL('../schema/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('../schema/scenario.schema.json', import.meta.url), `${JSON.stringify(scenarioSchema, null, 2)}\n`)
