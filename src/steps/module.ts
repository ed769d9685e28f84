import { text } from '../scenario/schema-parts.js'
import { userApi } from '../scenario/user-api.js'
import { loadUserModule } from '../scenario/user-module.js'
import { define } from '../Step.js'

export type ModuleBody = {
  /** A TypeScript or JavaScript file, relative to the scenario file. */
  path: string
  label?: string
}

/** A TypeScript/JavaScript file whose default export gets a viem client and an ethers v6 provider on the fork. */
export const module = define<'module', ModuleBody>({
  kind: 'module',
  summary: 'a TypeScript/JavaScript file whose default export gets a viem client and an ethers v6 provider on the fork',
  target: ['fork'],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: { path: { type: 'string', maxLength: 4_096 }, label: text },
  },
  async run(ctx, body, env) {
    const run = await loadUserModule<(api: unknown) => Promise<void>>(ctx.scenario, body.path, `${env.where}.module.path`)
    await env.beforeStep()
    await run(await userApi(ctx))
    env.record({ label: body.label ?? body.path, phase: env.phase, type: 'module', ok: true })
  },
})
