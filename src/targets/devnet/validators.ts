import { InputError } from '../../errors.js'
import * as P from '../../Params.js'
import { maxValidators } from '../devnet-size.js'

/**
 * A validator id in fault params: an integer from 0 to n − 1, n the scenario's
 * `target.validators` (checked at load; the schema, which cannot see n, says `maxValidators` − 1).
 */
export function validatorIdParam(o: { description?: string } = {}): P.Spec<number> {
  const base = P.integer({ min: 0, max: maxValidators - 1, ...o })
  return {
    ...base,
    text: 'validator id',
    parse(value, at) {
      const id = base.parse(value, at)
      if (at.validators !== undefined && id >= at.validators)
        throw P.fail(at, `must be a validator id from 0 to ${at.validators - 1} (the devnet has ${at.validators} validators)`, value)
      return id
    },
  }
}

/**
 * A validator named by a fault's `target` (`2`, `"2"`, `"validator-2"`), checked against the
 * devnet's validator count (`count`: `devnet.nodes.length` at apply time).
 */
export function validatorId(target: string | number | undefined, type: string, count: number): number {
  const m = /^(?:validator-)?(\d+)$/.exec(String(target ?? ''))
  const id = m ? Number(m[1]) : Number.NaN
  if (!(id >= 0 && id < count)) throw new InputError(`The fault \`${type}\` needs \`target\`: a validator id from 0 to ${count - 1}. Got \`${JSON.stringify(target)}\`.`)
  return id
}
