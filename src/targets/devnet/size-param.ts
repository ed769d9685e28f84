import type { InputError } from '../../errors.js'
import * as P from '../../Params.js'
import { checkSize, parseSizeExpr, type SizeExpr, sizeExprSchema } from '../devnet-size.js'

/**
 * A `SizeExpr` in fault params. At load (the scenario's n known) the number it comes to must be
 * between `min` and n; the fault checks it again on the devnet it applies to.
 */
export function sizeParam(o: { description?: string; min: number }): P.Spec<SizeExpr> {
  return {
    schema: { ...sizeExprSchema, ...(o.description ? { description: o.description } : {}) },
    required: true,
    text: 'a number of validators: an integer, or f, f+1, 2f, 2f+1 …',
    parse(value, at) {
      let e: SizeExpr
      try {
        e = parseSizeExpr(value, P.name(at.path))
      } catch (error) {
        throw new P.ParamsError((error as InputError).shortMessage, at.path)
      }
      if (at.validators !== undefined) checkSize(e, at.validators, o.min, (message) => P.fail(at, message, value))
      return e
    },
  }
}

