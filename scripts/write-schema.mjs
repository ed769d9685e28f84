// Writes the scenario JSON Schema for editors (yaml-language-server) from the compiled source.
import * as fs from 'node:fs'
import { scenarioSchema } from '../dist/src/scenario/schema.js'

fs.mkdirSync(new URL('../schema/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('../schema/scenario.schema.json', import.meta.url), `${JSON.stringify(scenarioSchema, null, 2)}\n`)
// The topology (devnet.yaml) and endpoints files' schemas, for the same editors.
const { topologySchema } = await import('../dist/src/topology/topology.js')
const { endpointsSchema } = await import('../dist/src/topology/endpoints.js')
fs.writeFileSync(new URL('../schema/topology.schema.json', import.meta.url), `${JSON.stringify(topologySchema, null, 2)}\n`)
fs.writeFileSync(new URL('../schema/endpoints.schema.json', import.meta.url), `${JSON.stringify(endpointsSchema, null, 2)}\n`)
