import { InputError } from '../../errors.js'
import type { Prng } from '../../util/prng.js'

/**
 * Rules of the JSON-RPC fault proxy: what a rule is, how it is validated, which calls it
 * matches, and the one engine both transports (HTTP and WebSocket) run matched calls through.
 *
 * Order when several rules match one call (insertion order within each step):
 * 1. delays (`latency`) add up;
 * 2. the first terminal action wins (`hang`, `http-error`, `malformed`, `truncate`, `rpc-error`);
 * 3. then the result transforms: a `partial` failure, `stale`, `rewrite`.
 * `slow-consumer` throttles whatever is finally sent; `drop-subscription` only acts on
 * WebSocket subscription notifications.
 */

// ─── Rule data ───────────────────────────────────────────────────────────────────────────────

/** Which calls a rule applies to. Every field narrows; a missing field matches everything. */
export type Match = {
  /** Method names: exact (`eth_call`), `*` for all, or a prefix pattern ending in `*` (`eth_*`). */
  methods?: readonly string[]
  /** Positions inside a batch, 0-based. A rule with `batchIndex` never matches a single call. */
  batchIndex?: readonly number[]
  /** Client names: the `x-forkchaos-client` header when sent, else the remote address. */
  clients?: readonly string[]
}

/** Delays the call before it is forwarded by `latencyMs` plus a uniform draw in [0, `jitterMs`]. */
export type LatencyAction = { type: 'latency'; latencyMs: number; jitterMs?: number }

/**
 * Never answers. The connection is held until the client gives up, the rule is removed, or the
 * proxy closes; then it is closed without an answer (HTTP) or simply forgotten (WebSocket).
 */
export type HangAction = { type: 'hang' }

/**
 * Answers the whole HTTP request with this status and a body shaped like real providers':
 * 429 and 503 carry `Retry-After` (`retryAfterS`, default 1 s) and a JSON-RPC error; 500 a
 * JSON-RPC internal error; 502 and 504 a load balancer's HTML page. Over WebSocket the calls get
 * the matching JSON-RPC error instead.
 */
export type HttpErrorAction = { type: 'http-error'; status: HttpErrorStatus; retryAfterS?: number }
export type HttpErrorStatus = 429 | 500 | 502 | 503 | 504

/** Answers the call with a JSON-RPC error object (HTTP 200). Default `-32005` "request rate exceeded". */
export type RpcErrorAction = { type: 'rpc-error'; code?: number; message?: string; data?: unknown }

/**
 * Answers as a node `blocks` behind the upstream head (read from upstream, cached ~50 ms):
 * `eth_blockNumber` is head−N; `latest`/`pending` block tags become head−N; blocks, receipts and
 * transactions newer than head−N are unknown (null); explicit newer block numbers fail with
 * -32000 "header not found". `safe`/`finalized` blocks are capped at head−N. Several stale rules
 * on one call: the largest `blocks` wins.
 */
export type StaleAction = { type: 'stale'; blocks: number }

/**
 * Each matching call independently fails with probability `failProbability` (a batch answers
 * the rest normally). The error defaults to the `rpc-error` default. Failed calls are not forwarded.
 */
export type PartialAction = { type: 'partial'; failProbability: number; code?: number; message?: string }

/**
 * Sends only the first `bytes` of the response body (default: half of it) with the full
 * `Content-Length`, then closes the connection. Over WebSocket the cut text is sent as one frame
 * and the socket stays open.
 */
export type TruncateAction = { type: 'truncate'; bytes?: number }

/** Answers HTTP 200 with a syntactically broken JSON body (an unquoted hex result). */
export type MalformedAction = { type: 'malformed' }

/**
 * WebSocket only: after `afterMessages` notifications (default 0) of a subscription have been
 * delivered, further notifications of that subscription are swallowed while the rule exists;
 * the socket stays open and `eth_unsubscribe` still works. Notifications are matched as method
 * `eth_subscription`; a pattern naming `eth_subscribe` matches them too.
 */
export type DropSubscriptionAction = { type: 'drop-subscription'; afterMessages?: number }

/**
 * Throttles what is sent back to `bytesPerSecond`: the HTTP body trickles out in 50 ms slices;
 * a WebSocket frame is sent whole once its bytes would have arrived (frames stay in order;
 * a client more than 10,000 frames behind is disconnected, as nodes do with slow consumers).
 */
export type SlowConsumerAction = { type: 'slow-consumer'; bytesPerSecond: number }

/**
 * Replaces one field of the call's result through `with` (TypeScript API only). `path` is
 * dotted, relative to the result, with an optional `result.` prefix: `stateRoot`,
 * `result.stateRoot`, `transactions.0.hash`; an empty path or `result` replaces the whole
 * result. A path that does not exist leaves the answer untouched; error answers are untouched.
 */
export type RewriteAction = {
  type: 'rewrite'
  path: string
  /** May return a promise (the answer waits for it; e.g. a block hash over a Merkle-Patricia root). */
  with: (value: unknown, ctx: RewriteContext) => unknown
}

export type RewriteContext = {
  readonly method: string
  readonly params: unknown
  readonly client: string
  readonly batchIndex: number | undefined
  readonly ruleId: string
}

export type Action =
  | LatencyAction
  | HangAction
  | HttpErrorAction
  | RpcErrorAction
  | StaleAction
  | PartialAction
  | TruncateAction
  | MalformedAction
  | DropSubscriptionAction
  | SlowConsumerAction
  | RewriteAction

/** What a caller writes. `probability` (0..1, default 1) is drawn per matching call from the rule's own seeded stream. */
export type RuleSpec = { match?: Match; probability?: number; action: Action }

/** A validated rule as the proxy holds it. */
export type Rule = { readonly id: string; readonly match: Match; readonly probability: number; readonly action: Action }

// ─── Validation ──────────────────────────────────────────────────────────────────────────────

type Fields = Record<string, unknown>

/** One parser per action type; the union of names comes from here. */
const actionParsers = {
  latency: (a: Fields): LatencyAction => ({
    type: 'latency',
    latencyMs: nonNegative(a, 'latencyMs', 'latency'),
    ...optional(a, 'jitterMs', () => nonNegative(a, 'jitterMs', 'latency')),
  }),
  hang: (): HangAction => ({ type: 'hang' }),
  'http-error': (a: Fields): HttpErrorAction => {
    const status = a.status
    if (!httpErrorStatuses.includes(status as HttpErrorStatus))
      fail('status', `one of ${httpErrorStatuses.join(', ')}`, status, 'http-error')
    return {
      type: 'http-error',
      status: status as HttpErrorStatus,
      ...optional(a, 'retryAfterS', () => nonNegativeInteger(a, 'retryAfterS', 'http-error')),
    }
  },
  'rpc-error': (a: Fields): RpcErrorAction => ({
    type: 'rpc-error',
    ...optional(a, 'code', () => integer(a, 'code', 'rpc-error')),
    ...optional(a, 'message', () => string(a, 'message', 'rpc-error')),
    ...optional(a, 'data', () => a.data),
  }),
  stale: (a: Fields): StaleAction => ({ type: 'stale', blocks: nonNegativeInteger(a, 'blocks', 'stale') }),
  partial: (a: Fields): PartialAction => ({
    type: 'partial',
    failProbability: probability(a, 'failProbability', 'partial'),
    ...optional(a, 'code', () => integer(a, 'code', 'partial')),
    ...optional(a, 'message', () => string(a, 'message', 'partial')),
  }),
  truncate: (a: Fields): TruncateAction => ({
    type: 'truncate',
    ...optional(a, 'bytes', () => nonNegativeInteger(a, 'bytes', 'truncate')),
  }),
  malformed: (): MalformedAction => ({ type: 'malformed' }),
  'drop-subscription': (a: Fields): DropSubscriptionAction => ({
    type: 'drop-subscription',
    ...optional(a, 'afterMessages', () => nonNegativeInteger(a, 'afterMessages', 'drop-subscription')),
  }),
  'slow-consumer': (a: Fields): SlowConsumerAction => {
    const v = a.bytesPerSecond
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail('bytesPerSecond', 'a number > 0', v, 'slow-consumer')
    return { type: 'slow-consumer', bytesPerSecond: v }
  },
  rewrite: (a: Fields): RewriteAction => {
    if (typeof a.path !== 'string') fail('path', 'a dotted path string like "stateRoot"', a.path, 'rewrite')
    if (typeof a.with !== 'function')
      fail('with', 'a function (rewrite rules come from the TypeScript API, not from files)', a.with, 'rewrite')
    return { type: 'rewrite', path: a.path, with: a.with as RewriteAction['with'] }
  },
} satisfies { [K in Action['type']]: (a: Fields) => Extract<Action, { type: K }> }

export type ActionType = keyof typeof actionParsers
/** Every action type, in the order the docs list them. */
export const actionTypes = Object.keys(actionParsers) as ActionType[]

const actionFields: { [K in ActionType]: readonly string[] } = {
  latency: ['latencyMs', 'jitterMs'],
  hang: [],
  'http-error': ['status', 'retryAfterS'],
  'rpc-error': ['code', 'message', 'data'],
  stale: ['blocks'],
  partial: ['failProbability', 'code', 'message'],
  truncate: ['bytes'],
  malformed: [],
  'drop-subscription': ['afterMessages'],
  'slow-consumer': ['bytesPerSecond'],
  rewrite: ['path', 'with'],
}

const httpErrorStatuses: readonly HttpErrorStatus[] = [429, 500, 502, 503, 504]

/**
 * Validates a rule (from the TypeScript API or a parsed scenario file) and gives it `id`.
 * Errors name the field and the value given: "`latencyMs` must be a number ≥ 0. Got `"x"`."
 */
export function parseRule(spec: unknown, id: string): Rule {
  if (!isRecord(spec)) fail('rule', 'an object with an `action`', spec)
  for (const key of Object.keys(spec))
    if (!['match', 'probability', 'action'].includes(key))
      throw new InputError(`Unknown rule field \`${key}\`.`, { hint: 'A rule has `match`, `probability` and `action`.' })
  const action = spec.action
  if (!isRecord(action)) fail('action', 'an object with a `type`', action)
  const type = action.type
  if (typeof type !== 'string' || !(type in actionParsers))
    fail('action.type', `one of ${actionTypes.map((t) => `\`${t}\``).join(', ')}`, type)
  const known = actionFields[type as ActionType]
  for (const key of Object.keys(action))
    if (key !== 'type' && !known.includes(key))
      throw new InputError(`Unknown field \`${key}\` in a \`${type}\` action.`, {
        context: { Action: type },
        hint: known.length ? `A \`${type}\` action takes ${known.map((k) => `\`${k}\``).join(', ')}.` : `A \`${type}\` action takes no fields.`,
      })
  const parsedAction = actionParsers[type as ActionType](action)
  return {
    id,
    match: parseMatch(spec.match),
    probability: spec.probability === undefined ? 1 : probability(spec, 'probability'),
    action: parsedAction,
  }
}

function parseMatch(raw: unknown): Match {
  if (raw === undefined) return {}
  if (!isRecord(raw)) fail('match', 'an object', raw)
  for (const key of Object.keys(raw))
    if (!['methods', 'batchIndex', 'clients'].includes(key))
      throw new InputError(`Unknown match field \`${key}\`.`, { hint: 'A match has `methods`, `batchIndex` and `clients`.' })
  const match: Match = {}
  if (raw.methods !== undefined) {
    const m = raw.methods
    if (!Array.isArray(m) || m.length === 0 || !m.every((x) => typeof x === 'string' && /^[^*]*\*?$/.test(x) && x !== ''))
      fail('methods', 'a non-empty list of method names, `*`, or prefixes ending in `*` like "eth_*"', m)
    match.methods = [...m] as string[]
  }
  if (raw.batchIndex !== undefined) {
    const b = raw.batchIndex
    if (!Array.isArray(b) || !b.every((x) => Number.isInteger(x) && (x as number) >= 0))
      fail('batchIndex', 'a list of integers ≥ 0', b)
    match.batchIndex = [...b] as number[]
  }
  if (raw.clients !== undefined) {
    const c = raw.clients
    if (!Array.isArray(c) || !c.every((x) => typeof x === 'string')) fail('clients', 'a list of strings', c)
    match.clients = [...c] as string[]
  }
  return match
}

const optional = <K extends string, V>(a: Fields, key: K, read: () => V) =>
  (a[key] === undefined ? {} : { [key]: read() }) as { [P in K]?: V }

function nonNegative(a: Fields, key: string, action: string): number {
  const v = a[key]
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(key, 'a number ≥ 0', v, action)
  return v
}

function nonNegativeInteger(a: Fields, key: string, action: string): number {
  const v = a[key]
  if (!Number.isSafeInteger(v) || (v as number) < 0) fail(key, 'an integer ≥ 0', v, action)
  return v as number
}

function integer(a: Fields, key: string, action: string): number {
  const v = a[key]
  if (!Number.isSafeInteger(v)) fail(key, 'an integer', v, action)
  return v as number
}

function string(a: Fields, key: string, action: string): string {
  const v = a[key]
  if (typeof v !== 'string') fail(key, 'a string', v, action)
  return v
}

function probability(a: Fields, key: string, action?: string): number {
  const v = a[key]
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(key, 'between 0 and 1', v, action)
  return v
}

function fail(field: string, expected: string, value: unknown, action?: string): never {
  throw new InputError(`\`${field}\` must be ${expected}. Got \`${show(value)}\`.`, {
    context: { Action: action },
  })
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return `${value}n`
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

// ─── Matching and planning ───────────────────────────────────────────────────────────────────

/** A rule as the engine holds it: its insertion rank and its own seeded stream. */
export type InstalledRule = { readonly rule: Rule; readonly order: number; readonly prng: Prng }

/** One JSON-RPC call as rules see it. */
export type CallInfo = { readonly method: string; readonly client: string; readonly batchIndex: number | undefined }

/** `*` matches every method, `eth_*` every method starting `eth_`; anything else matches itself. */
export const methodMatches = (pattern: string, method: string) =>
  pattern.endsWith('*') ? method.startsWith(pattern.slice(0, -1)) : pattern === method

/** Whether every field of `match` admits the call. */
export function ruleMatches(match: Match, call: CallInfo): boolean {
  if (match.methods && !match.methods.some((p) => methodMatches(p, call.method))) return false
  if (match.batchIndex && (call.batchIndex === undefined || !match.batchIndex.includes(call.batchIndex))) return false
  if (match.clients && !match.clients.includes(call.client)) return false
  return true
}

/** Draws the rule's `probability` from its own stream; 1 and 0 draw nothing. */
export function fires(installed: InstalledRule): boolean {
  const p = installed.rule.probability
  return p >= 1 || (p > 0 && installed.prng.next() < p)
}

export type RpcErrorObject = { code: number; message: string; data?: unknown }

type Terminal = HangAction | HttpErrorAction | MalformedAction | TruncateAction | RpcErrorAction
type Ranked<A> = { action: A; ruleId: string; order: number }

/** What the rules decided for one call. */
export type CallPlan = {
  /** Rules that took effect, in insertion order. */
  ruleIds: string[]
  delayMs: number
  terminal: Ranked<Terminal> | undefined
  /** Set when a `partial` rule failed this call and no terminal action came first. */
  partialError: RpcErrorObject | undefined
  transforms: Ranked<StaleAction | RewriteAction>[]
  bytesPerSecond: number | undefined
}

/** Runs the call past every rule in insertion order, drawing probabilities from each rule's own stream. */
export function planCall(rules: readonly InstalledRule[], call: CallInfo): CallPlan {
  let delayMs = 0
  let terminal: Ranked<Terminal> | undefined
  let partial: Ranked<PartialAction> | undefined
  let bytesPerSecond: number | undefined
  const delays: string[] = []
  const slow: string[] = []
  const transforms: Ranked<StaleAction | RewriteAction>[] = []
  for (const installed of rules) {
    const { rule, order, prng } = installed
    const action = rule.action
    if (action.type === 'drop-subscription' || !ruleMatches(rule.match, call) || !fires(installed)) continue
    const ranked = { ruleId: rule.id, order }
    switch (action.type) {
      case 'latency':
        delayMs += action.latencyMs + (action.jitterMs ? prng.next() * action.jitterMs : 0)
        delays.push(rule.id)
        break
      case 'hang':
      case 'http-error':
      case 'malformed':
      case 'truncate':
      case 'rpc-error':
        terminal ??= { ...ranked, action }
        break
      case 'partial':
        if (!partial && prng.next() < action.failProbability) partial = { ...ranked, action }
        break
      case 'stale':
      case 'rewrite':
        transforms.push({ ...ranked, action })
        break
      case 'slow-consumer':
        bytesPerSecond = Math.min(bytesPerSecond ?? Number.POSITIVE_INFINITY, action.bytesPerSecond)
        slow.push(rule.id)
        break
    }
  }
  // A terminal answer other than truncate replaces the result, so transforms never see it.
  const answered = terminal !== undefined && terminal.action.type !== 'truncate'
  const failed = !answered && partial !== undefined
  const kept = answered || failed ? [] : transforms
  const effective = [
    ...delays,
    ...slow,
    ...(terminal ? [terminal.ruleId] : []),
    ...(failed && partial ? [partial.ruleId] : []),
    ...kept.map((t) => t.ruleId),
  ]
  const rank = new Map(rules.map((r) => [r.rule.id, r.order]))
  return {
    ruleIds: [...new Set(effective)].sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0)),
    delayMs,
    terminal,
    partialError: failed && partial ? errorFor(partial.action.code, partial.action.message) : undefined,
    transforms: kept,
    bytesPerSecond,
  }
}

/** What the rules decided for one HTTP request or one WebSocket message (a call or a batch). */
export type RequestPlan = {
  /** The longest delay among the calls: a batch is answered when its slowest element is. */
  delayMs: number
  /** An action that answers for the whole request: the earliest-inserted among the calls'. */
  whole: Ranked<HangAction | HttpErrorAction | MalformedAction> | undefined
  truncate: TruncateAction | undefined
  bytesPerSecond: number | undefined
  /** Some call needs its request or its answer changed (not just delayed, throttled or cut). */
  rewrites: boolean
  /** Any rule took effect at all. */
  affected: boolean
}

/**
 * Combines the plans of a request's calls (undefined for elements that are not calls).
 * `refusals`: elements the proxy answers itself (`ReadRequest.refusals`), which makes the request one whose answer is put together here.
 */
export function planRequest(plans: readonly (CallPlan | undefined)[], refusals = 0): RequestPlan {
  let delayMs = 0
  let whole: RequestPlan['whole']
  let truncate: Ranked<TruncateAction> | undefined
  let bytesPerSecond: number | undefined
  let rewrites = false
  let affected = false
  for (const plan of plans) {
    if (!plan) continue
    if (plan.ruleIds.length > 0) affected = true
    delayMs = Math.max(delayMs, plan.delayMs)
    if (plan.bytesPerSecond !== undefined) bytesPerSecond = Math.min(bytesPerSecond ?? Number.POSITIVE_INFINITY, plan.bytesPerSecond)
    const t = plan.terminal
    if (t && (t.action.type === 'hang' || t.action.type === 'http-error' || t.action.type === 'malformed')) {
      if (!whole || t.order < whole.order) whole = { ...t, action: t.action }
    } else if (t && t.action.type === 'truncate') {
      if (!truncate || t.order < truncate.order) truncate = { ...t, action: t.action }
    } else if (t) rewrites = true
    if (plan.partialError || plan.transforms.length > 0) rewrites = true
  }
  if (refusals > 0) rewrites = affected = true
  return { delayMs, whole, truncate: truncate?.action, bytesPerSecond, rewrites, affected }
}

// ─── Answers the proxy makes up ──────────────────────────────────────────────────────────────

/** Messages real nodes and providers send with these codes (JSON-RPC 2.0 and EIP-1474). */
const defaultMessages: Record<number, string> = {
  [-32700]: 'Parse error',
  [-32600]: 'Invalid request',
  [-32601]: 'Method not found',
  [-32602]: 'Invalid params',
  [-32603]: 'Internal error',
  [-32000]: 'Invalid input',
  [-32001]: 'Resource not found',
  [-32002]: 'Resource unavailable',
  [-32003]: 'Transaction rejected',
  [-32004]: 'Method not supported',
  [-32005]: 'request rate exceeded',
  [-32006]: 'JSON-RPC version not supported',
}

/** EIP-1474 "limit exceeded", what rate-limited providers answer with. */
export const DEFAULT_RPC_ERROR_CODE = -32005

/** An error object with the message nodes send for `code` unless `message` is given. */
export function errorFor(code = DEFAULT_RPC_ERROR_CODE, message?: string, data?: unknown): RpcErrorObject {
  return { code, message: message ?? defaultMessages[code] ?? 'Server error', ...(data === undefined ? {} : { data }) }
}

/** A JSON-RPC error answer; an unknown id is `null`, as the spec asks. */
export const errorReply = (id: unknown, error: RpcErrorObject) => ({ jsonrpc: '2.0', id: id ?? null, error })

/** The body, headers and status a provider or its load balancer sends with this HTTP error. */
export function httpErrorAnswer(action: HttpErrorAction, id: unknown): { status: number; headers: Record<string, string>; body: string } {
  const retryAfterS = action.retryAfterS ?? 1
  const json = (error: RpcErrorObject, extra: Record<string, string> = {}) => ({
    status: action.status,
    headers: { 'content-type': 'application/json', ...extra },
    body: JSON.stringify(errorReply(id, error)),
  })
  const html = (title: string) => ({
    status: action.status,
    headers: { 'content-type': 'text/html' },
    body: `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`,
  })
  switch (action.status) {
    case 429:
      return json(httpErrorAsRpcError(action), { 'retry-after': String(retryAfterS) })
    case 500:
      return json(httpErrorAsRpcError(action))
    case 502:
      return html('502 Bad Gateway')
    case 503:
      return json(httpErrorAsRpcError(action), { 'retry-after': String(retryAfterS) })
    case 504:
      return html('504 Gateway Time-out')
  }
}

/** The JSON-RPC error a WebSocket client gets where an HTTP client would get the status. */
export function httpErrorAsRpcError(action: HttpErrorAction): RpcErrorObject {
  switch (action.status) {
    case 429:
      return { code: -32005, message: 'rate limit exceeded', data: { backoff_seconds: action.retryAfterS ?? 1 } }
    case 500:
      return errorFor(-32603)
    case 502:
      return { code: -32603, message: 'bad gateway' }
    case 503:
      return { code: -32011, message: 'no backend is currently healthy to serve traffic' }
    case 504:
      return { code: -32603, message: 'gateway timeout' }
  }
}

/** A 200 body that is not JSON: the result's hex is unquoted, as from a broken serializer. */
export function malformedBody(elements: readonly unknown[], batch: boolean): string {
  const one = (el: unknown) => `{"jsonrpc":"2.0","id":${JSON.stringify(idOf(el) ?? null)},"result":0x0}`
  return batch ? `[${elements.map(one).join(',')}]` : one(elements[0])
}

// ─── The engine for calls whose request or answer changes ────────────────────────────────────

/** Sends calls upstream as one message and returns their answers in the same order (undefined for notifications). */
export type Forward = (calls: readonly unknown[], batch: boolean) => Promise<(unknown | undefined)[]>

export type ResolveArgs = {
  elements: readonly unknown[]
  infos: readonly (CallInfo | undefined)[]
  plans: readonly (CallPlan | undefined)[]
  batch: boolean
  head: () => Promise<bigint>
  forward: Forward
  /** Per element: the error the proxy answers it with itself (`ReadRequest.refused`). */
  refused?: readonly (RpcErrorObject | undefined)[]
  /** Numeric ids written in a form nodes refuse (`oddNumericIds`). */
  oddIds?: ReadonlySet<number>
}

/**
 * Answers every element of a request whose plan changes something: local errors, stale
 * rewrites, forwarding the rest in one upstream message, then the result transforms.
 * Returns one answer per element (undefined for notifications) and how many calls went upstream.
 */
export async function resolveCalls(args: ResolveArgs): Promise<{ answers: (unknown | undefined)[]; forwarded: number }> {
  const { elements, infos, plans } = args
  const answers: (unknown | undefined)[] = new Array(elements.length).fill(undefined)
  const outgoing: { index: number; call: unknown; post: StalePost | undefined; target: bigint | undefined }[] = []
  let head: Promise<bigint> | undefined
  for (let i = 0; i < elements.length; i++) {
    const el = elements[i]
    const plan = plans[i]
    const info = infos[i]
    const refusal = args.refused?.[i]
    if (refusal) {
      answers[i] = errorReply(idOf(el), refusal)
      continue
    }
    if (!plan || !info) {
      // Not a call: answered here, per element, as the spec asks (re-serialised, its id could come back changed).
      const id = isRecord(el) ? el.id : undefined
      answers[i] = errorReply(isEchoableId(id) && !(typeof id === 'number' && args.oddIds?.has(id)) ? id : null, errorFor(-32600))
      continue
    }
    const id = idOf(el)
    const notification = !hasId(el)
    if (!notification && (!isEchoableId(id) || (typeof id === 'number' && args.oddIds?.has(id)))) {
      // Sent under a proxy id it would be accepted (and given back wrong); upstream would refuse it.
      answers[i] = errorReply(null, badIdError)
      continue
    }
    if (plan.terminal?.action.type === 'rpc-error') {
      const a = plan.terminal.action
      if (!notification) answers[i] = errorReply(id, errorFor(a.code, a.message, a.data))
      continue
    }
    if (plan.partialError) {
      if (!notification) answers[i] = errorReply(id, plan.partialError)
      continue
    }
    const stale = plan.transforms.filter((t): t is Ranked<StaleAction> => t.action.type === 'stale')
    if (stale.length === 0) {
      outgoing.push({ index: i, call: el, post: undefined, target: undefined })
      continue
    }
    const blocks = BigInt(Math.max(...stale.map((t) => t.action.blocks)))
    head ??= args.head()
    const h = await head
    const target = h > blocks ? h - blocks : 0n
    const step = staleRequest(el as Fields, target)
    if (step.kind === 'answer') answers[i] = notification ? undefined : { jsonrpc: '2.0', id, result: step.result }
    else if (step.kind === 'error') answers[i] = notification ? undefined : errorReply(id, step.error)
    else outgoing.push({ index: i, call: step.call, post: step.post, target })
  }

  let forwarded = 0
  if (outgoing.length > 0) {
    const replies = await args.forward(
      outgoing.map((o) => o.call),
      args.batch,
    )
    forwarded += outgoing.length
    for (let k = 0; k < outgoing.length; k++) {
      const o = outgoing[k] as (typeof outgoing)[number]
      answers[o.index] = replies[k]
    }
    // Post-processing that needs another upstream look: stale safe/finalized blocks above head−N.
    for (const o of outgoing) {
      if (o.post === undefined || o.target === undefined) continue
      const answer = answers[o.index]
      if (!isRecord(answer) || !isRecord(answer.result)) continue
      const field = o.post === 'hide-newer-tx' ? answer.result.blockNumber : answer.result.number
      const n = hexToBigInt(field)
      if (n === undefined || n <= o.target) continue
      if (o.post === 'cap-block') {
        const params = (o.call as Fields).params as unknown[]
        const [again] = await args.forward([{ jsonrpc: '2.0', id: 0, method: 'eth_getBlockByNumber', params: [toHex(o.target), params[1] ?? false] }], false)
        forwarded++
        if (isRecord(again) && 'result' in again) answers[o.index] = { ...answer, result: again.result }
      } else answers[o.index] = { ...answer, result: null }
    }
  }

  for (let i = 0; i < elements.length; i++) {
    const plan = plans[i]
    const info = infos[i]
    const answer = answers[i]
    if (!plan || !info || !isRecord(answer) || !('result' in answer)) continue
    for (const t of plan.transforms) {
      if (t.action.type !== 'rewrite') continue
      const ctx: RewriteContext = {
        method: info.method,
        params: (elements[i] as Fields).params,
        client: info.client,
        batchIndex: info.batchIndex,
        ruleId: t.ruleId,
      }
      try {
        answer.result = await rewriteAt(answer.result, t.action.path, t.action.with, ctx)
      } catch (error) {
        answers[i] = errorReply(answer.id, {
          code: -32603,
          message: `forkchaos rewrite rule ${t.ruleId} threw: ${error instanceof Error ? error.message : String(error)}`,
        })
        break
      }
    }
  }
  return { answers, forwarded }
}

async function rewriteAt(result: unknown, path: string, fn: RewriteAction['with'], ctx: RewriteContext): Promise<unknown> {
  const parts = path.split('.').filter(Boolean)
  if (parts[0] === 'result') parts.shift()
  if (parts.length === 0) return await fn(result, ctx)
  let node: unknown = result
  for (const part of parts.slice(0, -1)) {
    if (!isRecord(node) && !Array.isArray(node)) return result
    node = (node as Fields)[part]
  }
  const last = parts[parts.length - 1] as string
  if ((isRecord(node) || Array.isArray(node)) && Object.hasOwn(node, last)) (node as Fields)[last] = await fn((node as Fields)[last], ctx)
  return result
}

// ─── Stale ───────────────────────────────────────────────────────────────────────────────────

type StalePost = 'cap-block' | 'hide-newer-block' | 'hide-newer-tx'
type StaleStep =
  | { kind: 'answer'; result: unknown }
  | { kind: 'error'; error: RpcErrorObject }
  | { kind: 'forward'; call: unknown; post: StalePost | undefined }

/** Where the block tag sits in the params of methods that read state "at a block". */
const blockParamIndex: Record<string, number> = {
  eth_call: 1,
  eth_estimateGas: 1,
  eth_getBalance: 1,
  eth_getCode: 1,
  eth_getTransactionCount: 1,
  eth_getStorageAt: 2,
}

const headerNotFound: RpcErrorObject = { code: -32000, message: 'header not found' }
const isHeadTag = (v: unknown) => v === undefined || v === 'latest' || v === 'pending'

/** How a node whose head is `target` answers (or what it asks upstream for). */
function staleRequest(call: Fields, target: bigint): StaleStep {
  const method = call.method as string
  const params = Array.isArray(call.params) ? [...call.params] : undefined
  const forward = (post?: StalePost): StaleStep => ({ kind: 'forward', call, post })
  const withParams = (p: unknown[]): StaleStep => ({ kind: 'forward', call: { ...call, params: p }, post: undefined })
  // Answered here only when the call is one a node would answer; anything odd goes upstream to be refused there.
  if (method === 'eth_blockNumber') return call.params === undefined || call.params === null || (Array.isArray(call.params) && call.params.length === 0) ? { kind: 'answer', result: toHex(target) } : forward()
  if (method === 'eth_getBlockByHash') return forward('hide-newer-block')
  if (method === 'eth_getTransactionByHash' || method === 'eth_getTransactionReceipt') return forward('hide-newer-tx')
  if (!params) return forward()
  if (method === 'eth_getBlockByNumber') {
    const tag = params[0]
    if (tag === 'latest' || tag === 'pending') return withParams([toHex(target), ...params.slice(1)])
    if (tag === 'safe' || tag === 'finalized') return forward('cap-block')
    const n = blockNumberOf(tag)
    const wellFormed = params.length <= 2 && (params[1] === undefined || typeof params[1] === 'boolean')
    if (n !== undefined && n > target && wellFormed) return { kind: 'answer', result: null }
    return forward()
  }
  if (method === 'eth_getLogs') {
    const filter = params[0]
    if (!isRecord(filter) || filter.blockHash !== undefined) return forward()
    const next: Fields = { ...filter }
    if (isHeadTag(filter.fromBlock)) next.fromBlock = toHex(target)
    const to = hexToBigInt(filter.toBlock)
    if (isHeadTag(filter.toBlock) || (to !== undefined && to > target)) next.toBlock = toHex(target)
    return withParams([next, ...params.slice(1)])
  }
  const at = blockParamIndex[method]
  if (at === undefined || params.length < at) return forward()
  const tag = params[at]
  if (isHeadTag(tag)) {
    params[at] = toHex(target)
    return withParams(params)
  }
  const n = hexToBigInt(isRecord(tag) ? tag.blockNumber : tag)
  if (n !== undefined && n > target) return { kind: 'error', error: headerNotFound }
  return forward()
}

// ─── Small helpers both transports use ───────────────────────────────────────────────────────

/** A plain JSON object (not null, not an array). */
export const isRecord = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The call an element is, if it is one: an object with a string `method`. */
export function callInfoOf(el: unknown, client: string, batchIndex: number | undefined): CallInfo | undefined {
  return isRecord(el) && typeof el.method === 'string' ? { method: el.method, client, batchIndex } : undefined
}

/** Calls without an `id` member are notifications: they get no answer. */
export const hasId = (el: unknown) => isRecord(el) && Object.hasOwn(el, 'id')
export const idOf = (el: unknown): unknown => (isRecord(el) ? el.id : undefined)

/** A JSON-RPC quantity. */
export const toHex = (n: bigint) => `0x${n.toString(16)}`

/** A block number as nodes read it: a quantity of at most 64 bits. */
function blockNumberOf(v: unknown): bigint | undefined {
  return typeof v === 'string' && /^0x[0-9a-fA-F]{1,16}$/.test(v) ? BigInt(v) : undefined
}

/** A JSON-RPC quantity or number-like hex string as a bigint; undefined for anything else. */
export function hexToBigInt(v: unknown): bigint | undefined {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{1,64}$/.test(v)) return undefined
  return BigInt(v)
}

/**
 * Gives each call that has an `id` a fresh proxy id (so answers route back even when a client
 * reuses ids or some of its batch was answered here), and remembers the originals.
 */
export function tagIds(calls: readonly unknown[], nextId: () => string): { sent: unknown[]; keys: (string | undefined)[] } {
  const keys: (string | undefined)[] = []
  const sent = calls.map((c) => {
    if (!hasId(c)) {
      keys.push(undefined)
      return c
    }
    const key = nextId()
    keys.push(key)
    return { ...(c as Fields), id: key }
  })
  return { sent, keys }
}

/**
 * Lines an upstream answer (one object or a batch array) up with the calls that were sent,
 * restoring each call's own id. Answers with an id upstream could not read (`null`) fill the
 * elements that were not calls, in order.
 */
export function alignResponses(calls: readonly unknown[], keys: readonly (string | undefined)[], reply: unknown): (unknown | undefined)[] {
  const list = Array.isArray(reply) ? reply : [reply]
  const byKey = new Map<string, Fields>()
  const loose: unknown[] = []
  for (const r of list) {
    if (isRecord(r) && typeof r.id === 'string' && keys.includes(r.id)) byKey.set(r.id, r)
    else loose.push(r)
  }
  // One error with id null for the whole message (Anvil refuses a whole batch for one bad element): it answers every call.
  const whole = list.length === 1 && byKey.size === 0 && isRecord(list[0]) && list[0].id === null && 'error' in list[0] ? list[0] : undefined
  return calls.map((call, k) => {
    const key = keys[k]
    if (key !== undefined) {
      const r = byKey.get(key) ?? whole
      return r ? { ...r, id: idOf(call) } : errorReply(idOf(call), { code: -32603, message: 'upstream sent no answer for this call' })
    }
    if (isRecord(call) && typeof call.method === 'string') return undefined // a notification
    return whole ?? loose.shift()
  })
}

/** 'error' when the answer carries a JSON-RPC error (or is not an answer at all). */
export const outcomeOf = (answer: unknown): 'ok' | 'error' => (isRecord(answer) && 'result' in answer && !('error' in answer) ? 'ok' : 'error')

/** JSON.parse that reports failure instead of throwing. */
export function safeParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

/**
 * Levels of nesting a call may have; deeper ones are answered -32600 by the proxy itself, per call
 * (per element in a batch), before anything parses them. The call object is level 1
 * (`{"params":[[1]]}` has 3); a batch's own array does not count. JSON.parse of 50,000 levels
 * takes ~17 ms and re-serialising them overflows the stack. 64 stays under what nodes read:
 * Anvil (serde_json) refuses 128 levels (with the batch's array), and refuses a whole batch
 * for one such element, so a batch the proxy forwards never loses its other answers that way.
 */
export const MAX_JSON_DEPTH = 64

/** The error a call nested deeper than `MAX_JSON_DEPTH` gets. */
export const tooDeepError: RpcErrorObject = {
  code: -32600,
  message: `Invalid request: nested deeper than ${MAX_JSON_DEPTH} levels (forkchaos proxy limit)`,
}

/** A request body or WebSocket message as rules see it. */
export type ReadRequest = {
  /** The body was a JSON array. */
  batch: boolean
  /** Its elements (one for a single call; none when the text is not JSON). A refused element is its id only (`{ id }`, or `{}`). */
  elements: unknown[]
  /** The call each element is, or undefined for elements that are not calls (or were refused). */
  infos: (CallInfo | undefined)[]
  /** One name per call for stats and events: the method, or `(invalid)`. */
  methods: string[]
  /** Per element: the error the proxy answers it with itself (nested too deep), else undefined. */
  refused: (RpcErrorObject | undefined)[]
  /** How many elements were refused. */
  refusals: number
}

/** Splits a body or message into calls; `client` names who sent it. */
export function readRequest(data: string | Buffer, client: string, maxDepth = MAX_JSON_DEPTH): ReadRequest {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const parsed = parseRequest(bytes, maxDepth)
  const { batch, elements, refused } = parsed
  const infos = elements.map((el, i) => (refused[i] ? undefined : callInfoOf(el, client, batch ? i : undefined)))
  const methods = infos.length === 0 ? ['(invalid)'] : infos.map((info) => info?.method ?? '(invalid)')
  return { batch, elements, infos, methods, refused, refusals: refused.filter(Boolean).length }
}

/**
 * Parses a body: with one look at its bytes first, so that only text within `maxDepth` is ever
 * parsed. Text that is not JSON gives no elements (it goes to upstream as it is).
 */
function parseRequest(bytes: Buffer, maxDepth: number): { batch: boolean; elements: unknown[]; refused: (RpcErrorObject | undefined)[] } {
  const none = { batch: false, elements: [], refused: [] }
  // Nesting past maxDepth takes two bytes a level: shorter text (most calls) needs no look first.
  if (bytes.length < 2 * (maxDepth + 1)) return parsedWhole(bytes, none)
  const shape = scanJson(bytes)
  if (shape === undefined) return none
  const limit = shape.batch ? maxDepth + 1 : maxDepth
  if (shape.depth <= limit) return parsedWhole(bytes, none)
  const elements: unknown[] = []
  const refused: (RpcErrorObject | undefined)[] = []
  for (const part of shape.parts) {
    if (part.depth > maxDepth) {
      const id = idIn(bytes, part.start, part.end)
      elements.push(id === undefined ? {} : { id })
      refused.push(tooDeepError)
      continue
    }
    const parsed = safeParse(bytes.toString('utf8', part.start, part.end))
    if (!parsed.ok) return none
    elements.push(parsed.value)
    refused.push(undefined)
  }
  if (!shape.batch) return { batch: false, elements, refused }
  return { batch: true, elements, refused }
}

function parsedWhole(bytes: Buffer, none: { batch: boolean; elements: unknown[]; refused: (RpcErrorObject | undefined)[] }) {
  const parsed = safeParse(bytes.toString('utf8'))
  if (!parsed.ok) return none
  const batch = Array.isArray(parsed.value)
  const elements = batch ? (parsed.value as unknown[]) : [parsed.value]
  return { batch, elements, refused: elements.map(() => undefined) }
}

type Part = { start: number; end: number; depth: number }

const WS = new Set([0x20, 0x09, 0x0a, 0x0d])
/** `scanJson` stops reading a single call nested this deep: every limit it serves is lower. */
const EARLY_EXIT_DEPTH = 1_024

/**
 * How deep the text nests (strings skipped) and, for a batch, where its elements are and how deep
 * each one goes (counted from the element). Undefined when the brackets do not balance (not JSON).
 * Only brackets, quotes and escapes are looked at: whether the rest is JSON is JSON.parse's job.
 */
export function scanJson(b: Buffer): { batch: boolean; depth: number; parts: Part[] } | undefined {
  let i = 0
  while (i < b.length && WS.has(b[i] as number)) i++
  const batch = b[i] === 0x5b
  const parts: Part[] = []
  let depth = 0
  let max = 0
  let part: Part | undefined = batch ? undefined : { start: i, end: b.length, depth: 0 }
  for (; i < b.length; i++) {
    const c = b[i] as number
    if (c === 0x22) {
      const j = closingQuote(b, i)
      if (j < 0) return undefined
      if (batch && depth === 1 && part === undefined) part = { start: i, end: i, depth: 0 }
      i = j
      continue
    }
    if (c === 0x5b || c === 0x7b) {
      if (batch && depth === 0 && parts.length + (part ? 1 : 0) > 0) return undefined
      if (batch && depth === 1 && part === undefined) part = { start: i, end: i, depth: 0 }
      depth++
      if (depth > max) max = depth
      if (part && depth - (batch ? 1 : 0) > part.depth) part.depth = depth - (batch ? 1 : 0)
      // A single call past any sane limit: only whether the brackets balance still matters.
      if (!batch && part && depth > EARLY_EXIT_DEPTH) return balances(b, i + 1, depth) ? { batch, depth, parts: [part] } : undefined
    } else if (c === 0x5d || c === 0x7d) {
      depth--
      if (depth < 0) return undefined
      if (batch && depth === 0) {
        if (part) {
          part.end = i
          parts.push(part)
          part = undefined
        }
      }
    } else if (batch && depth === 1 && c === 0x2c) {
      if (part) {
        part.end = i
        parts.push(part)
      }
      part = undefined
    } else if (batch && depth === 1 && part === undefined && !WS.has(c)) part = { start: i, end: i, depth: 0 }
    else if (batch && depth === 0 && !WS.has(c)) return undefined // text after the batch: not JSON
  }
  if (depth !== 0) return undefined
  if (!batch && part) parts.push(part)
  return { batch, depth: max, parts }
}

const RUNS = [1_024, 64].map((n) => ({ n, open: Buffer.alloc(n, 0x5b), close: Buffer.alloc(n, 0x5d) }))

/** How many bytes from `i` are one block of the bracket `c` (1,024 or 64), or 0. */
function bracketRun(b: Buffer, i: number, c: number): number {
  for (const run of RUNS) if (i + run.n <= b.length && b.compare(c === 0x5b ? run.open : run.close, 0, run.n, i, i + run.n) === 0) return run.n
  return 0
}

/** Whether the brackets from `i` on close the `depth` open ones exactly (strings skipped): the tight loop for deep text. */
function balances(b: Buffer, i: number, depth: number): boolean {
  for (; i < b.length; i++) {
    const c = b[i] as number
    // Deep text is long runs of one bracket: compare 1,024 then 64 bytes at a time (native) where it is.
    if (c === 0x5b || c === 0x5d) {
      const run = bracketRun(b, i, c)
      if (run > 0) {
        depth += c === 0x5b ? run : -run
        if (depth < 0) return false
        i += run - 1
        continue
      }
    }
    if (c === 0x5b || c === 0x7b) depth++
    else if (c === 0x5d || c === 0x7d) {
      if (--depth < 0) return false
    } else if (c === 0x22) {
      let j = i
      for (;;) {
        j = b.indexOf(0x22, j + 1)
        if (j < 0) return false
        let k = j - 1
        while (b[k] === 0x5c) k--
        if ((j - k) % 2 === 1) break
      }
      i = j
    }
  }
  return depth === 0
}

/**
 * The `id` member of the object in `b[start, end)` when it is a string, a number or null (read
 * without parsing the rest); undefined when there is none or it is anything else.
 */
function idIn(b: Buffer, start: number, end: number): unknown {
  let depth = 0
  for (let i = start; i < end; i++) {
    const c = b[i] as number
    if (c === 0x22) {
      let j = i
      for (;;) {
        j = b.indexOf(0x22, j + 1)
        if (j < 0 || j >= end) return undefined
        let k = j - 1
        while (b[k] === 0x5c) k--
        if ((j - k) % 2 === 1) break
      }
      if (depth === 1 && j - i === 3 && b[i + 1] === 0x69 && b[i + 2] === 0x64) {
        let k = j + 1
        while (k < end && WS.has(b[k] as number)) k++
        if (b[k] === 0x3a) {
          // A key "id": its value runs to the next `,` or `}` at this level, if it is a scalar.
          let v = k + 1
          while (v < end && WS.has(b[v] as number)) v++
          const first = b[v]
          if (first === 0x7b || first === 0x5b) return undefined
          let e = v
          if (first === 0x22) {
            e = b.indexOf(0x22, e + 1)
            while (e > 0 && e < end) {
              let q = e - 1
              while (b[q] === 0x5c) q--
              if ((e - q) % 2 === 1) break
              e = b.indexOf(0x22, e + 1)
            }
            if (e < 0 || e >= end) return undefined
            e++
          } else while (e < end && b[e] !== 0x2c && b[e] !== 0x7d && !WS.has(b[e] as number)) e++
          const raw = b.toString('utf8', v, e)
          if (first !== 0x22 && raw !== 'null' && !/^-?(0|[1-9][0-9]*)$/.test(raw)) return undefined // 1e3, 1.0: not ids nodes read
          const parsed = safeParse(raw)
          if (!parsed.ok) return undefined
          // Only an id that can be given back exactly (a rounded number would name another call).
          return isEchoableId(parsed.value) ? parsed.value : undefined
        }
      }
      i = j
      continue
    }
    if (c === 0x5b || c === 0x7b) depth++
    else if (c === 0x5d || c === 0x7d) depth--
  }
  return undefined
}

/** JSON.parse of text that nests at most `maxDepth` levels (upstream answers the proxy re-serialises); ok: false otherwise. */
export function parseWithin(bytes: Buffer, maxDepth = MAX_JSON_DEPTH + 1): { ok: true; value: unknown } | { ok: false } {
  const shape = scanJson(bytes)
  if (!shape || shape.depth > maxDepth) return { ok: false }
  return safeParse(bytes.toString('utf8'))
}

/**
 * Whether an id can be sent upstream under a proxy id and given back exactly: a string, null, or
 * an integer JavaScript holds exactly (larger numbers would come back rounded).
 */
export const isEchoableId = (id: unknown) => typeof id === 'string' || id === null || Number.isSafeInteger(id)

/**
 * Numbers written as ids in a form JSON.parse reads as an integer but nodes refuse as an id
 * (`1e3`, `1.0`; Anvil reads `-0` as 0): a proxy id would make such a call acceptable. Read from the text,
 * since parsing has already turned `1e3` into 1000; an `"id"` inside params counts too (rare, and
 * then the call is refused where upstream might have answered it).
 */
export function oddNumericIds(bytes: Buffer): Set<number> {
  const odd = new Set<number>()
  const text = bytes.toString('latin1')
  for (const m of text.matchAll(/"id"\s*:\s*(-?[0-9][0-9.eE+-]*)/g)) {
    const raw = m[1] as string
    if (!/^-?(0|[1-9][0-9]*)$/.test(raw)) odd.add(Number(raw))
  }
  return odd
}

/** The error a call a rule changes gets when its id is not one the proxy can give back exactly. */
export const badIdError: RpcErrorObject = {
  code: -32600,
  message: 'Invalid request: `id` must be a string, null or an integer within ±2^53 (forkchaos proxy, on calls a rule changes)',
}

/** An even split of `total` bytes over `n` calls (the first ones take the remainder), for per-call events of a batch. */
export function share(total: number, n: number, i: number): number {
  const base = Math.floor(total / n)
  return base + (i < total - base * n ? 1 : 0)
}

/** The index of the quote closing the JSON string opened at `open` (one not preceded by an odd run of backslashes), or -1. */
export function closingQuote(b: Buffer, open: number): number {
  let j = open
  for (;;) {
    j = b.indexOf(0x22, j + 1)
    if (j < 0) return -1
    let k = j - 1
    while (b[k] === 0x5c) k--
    if ((j - k) % 2 === 1) return j
  }
}
