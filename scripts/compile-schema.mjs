// Writes the scenario validator as ajv standalone code (dist/src/scenario/scenario-validator.cjs)
// from the compiled source, so that no command compiles the schema at run time. The loader uses it
// only while its schema hash matches the schema it was built from (else it compiles, as before).
import * as fs from 'node:fs'
import { generatedValidatorFile, standaloneValidatorSource } from '../dist/src/scenario/validate-schema.js'

fs.writeFileSync(generatedValidatorFile, standaloneValidatorSource())
