export type { Outcome } from '../Check.js'
