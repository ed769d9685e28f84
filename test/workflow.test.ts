// Static checks of the nightly chaos workflow we ship to users. Each rule is a small named predicate
// so the same code asserts the real file and, on broken copies, proves it can fail.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'

interface Step {
  name?: string
  id?: string
  if?: string | boolean
  uses?: string
  run?: string
  with?: Record<string, unknown>
  env?: Record<string, unknown>
}

interface Job {
  'runs-on'?: unknown
  'timeout-minutes'?: unknown
  steps?: Step[]
}

interface Workflow {
  on?: {
    schedule?: { cron?: unknown }[]
    workflow_dispatch?: { inputs?: Record<string, unknown> } | null
  }
  jobs?: Record<string, Job>
}

const WORKFLOW_URL = new URL('../.github/workflows/nightly-chaos.yml', import.meta.url)
const workflow = parse(readFileSync(WORKFLOW_URL, 'utf8')) as Workflow

// ---- helpers -------------------------------------------------------------------------------------

function steps(wf: Workflow): Step[] {
  const jobs = Object.values(wf.jobs ?? {})
  return jobs.length === 1 ? (jobs[0]?.steps ?? []) : []
}

function usesAction(step: Step, action: string): boolean {
  return typeof step.uses === 'string' && step.uses.split('@')[0] === action
}

/** `always()`, with or without the `${{ }}` wrapper, and nothing else. */
function isAlways(condition: unknown): boolean {
  if (typeof condition !== 'string') return false
  const bare = condition.trim().replace(/^\$\{\{\s*([\s\S]*?)\s*\}\}$/, '$1')
  return bare === 'always()'
}

const CRON_FIELDS: readonly { min: number; max: number; names?: readonly string[] }[] = [
  { min: 0, max: 59 }, // minute
  { min: 0, max: 23 }, // hour
  { min: 1, max: 31 }, // day of month
  { min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { min: 0, max: 6, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
]

function cronValue(text: string, field: { min: number; max: number; names?: readonly string[] }): number | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    return n >= field.min && n <= field.max ? n : undefined
  }
  const i = field.names?.indexOf(text.toUpperCase()) ?? -1
  return i >= 0 ? field.min + i : undefined
}

/** One comma-separated item: `*`, `N`, `N-M`, each optionally followed by `/step`. */
function isValidCronItem(item: string, field: { min: number; max: number; names?: readonly string[] }): boolean {
  const [range, step, ...rest] = item.split('/')
  if (range === undefined || rest.length > 0) return false
  if (step !== undefined && !(/^\d+$/.test(step) && Number(step) > 0)) return false
  if (range === '*') return true
  const bounds = range.split('-')
  if (bounds.length === 1) return cronValue(bounds[0] ?? '', field) !== undefined
  if (bounds.length !== 2) return false
  const lo = cronValue(bounds[0] ?? '', field)
  const hi = cronValue(bounds[1] ?? '', field)
  return lo !== undefined && hi !== undefined && lo <= hi
}

// ---- predicates ----------------------------------------------------------------------------------

function isValidCron(expr: unknown): boolean {
  if (typeof expr !== 'string') return false
  const fields = expr.trim().split(/\s+/)
  if (fields.length !== 5) return false
  return fields.every((f, i) => {
    const spec = CRON_FIELDS[i]
    return spec !== undefined && f.split(',').every((item) => isValidCronItem(item, spec))
  })
}

function hasValidSchedule(wf: Workflow): boolean {
  const schedule = wf.on?.schedule
  return Array.isArray(schedule) && schedule.length > 0 && schedule.every((s) => isValidCron(s.cron))
}

function hasDispatchSeedInput(wf: Workflow): boolean {
  const dispatch = wf.on?.workflow_dispatch
  return dispatch != null && typeof dispatch === 'object' && dispatch.inputs?.seed != null
}

function hasSingleBoundedJob(wf: Workflow): boolean {
  const jobs = Object.values(wf.jobs ?? {})
  if (jobs.length !== 1) return false
  const timeout = jobs[0]?.['timeout-minutes']
  return typeof timeout === 'number' && timeout > 0 && timeout <= 60
}

/** `lts/*` or `lts/<codename>`, or an even major version (even majors become LTS) from 20 on. */
function isLtsNodeVersion(version: unknown): boolean {
  if (typeof version === 'string' && /^lts\/(\*|[a-z]+)$/i.test(version)) return true
  const major = typeof version === 'number' ? version : Number(String(version).split('.')[0])
  return Number.isInteger(major) && major >= 20 && major % 2 === 0
}

function isSuiteRun(step: Step): boolean {
  const run = step.run ?? ''
  return run.includes('forkchaos run') && run.includes('--report-dir') && run.includes('--compare')
}

/** checkout, then setup-node on LTS, then `npm ci`, then the suite, in that order. */
function hasStepsInOrder(wf: Workflow): boolean {
  const all = steps(wf)
  const matchers: ((s: Step) => boolean)[] = [
    (s) => usesAction(s, 'actions/checkout'),
    (s) => usesAction(s, 'actions/setup-node') && isLtsNodeVersion(s.with?.['node-version']),
    (s) => /(^|[\s;&|])npm ci(\s|$)/m.test(s.run ?? ''),
    isSuiteRun,
  ]
  let from = 0
  for (const matches of matchers) {
    const at = all.findIndex((s, i) => i >= from && matches(s))
    if (at < 0) return false
    from = at + 1
  }
  return true
}

function summaryStep(wf: Workflow): Step | undefined {
  return steps(wf).find((s) => (s.run ?? '').includes('$GITHUB_STEP_SUMMARY'))
}

function summaryStepAlwaysRuns(wf: Workflow): boolean {
  const step = summaryStep(wf)
  return step !== undefined && isAlways(step.if)
}

function uploadStepAlwaysRuns(wf: Workflow): boolean {
  const step = steps(wf).find((s) => usesAction(s, 'actions/upload-artifact'))
  return step !== undefined && isAlways(step.if)
}

/** Untrusted text must reach scripts through env, never be expanded into the script itself. */
function runScriptsAvoidInjection(wf: Workflow): boolean {
  return steps(wf).every((s) => !/\$\{\{\s*(inputs|github\.event)\./.test(s.run ?? ''))
}

function isPinnedUses(uses: string): boolean {
  return /^[^@\s]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/.test(uses)
}

function allUsesPinned(wf: Workflow): boolean {
  return steps(wf).every((s) => s.uses === undefined || isPinnedUses(s.uses))
}

/**
 * The last step reads the suite step's recorded `code` output (through env) and exits with it:
 * `exit "$VAR"` or `exit "${VAR:-…}"`, where VAR is bound to `steps.<suite id>.outputs.code`.
 */
function lastStepFailsOnCode(wf: Workflow): boolean {
  const all = steps(wf)
  const suiteId = all.find(isSuiteRun)?.id
  const last = all.at(-1)
  if (suiteId === undefined || last?.run === undefined) return false
  const output = new RegExp(`^\\$\\{\\{\\s*steps\\.${suiteId}\\.outputs\\.code\\s*\\}\\}$`)
  const vars = Object.entries(last.env ?? {})
    .filter(([, value]) => typeof value === 'string' && output.test(value.trim()))
    .map(([name]) => name)
  return vars.some((name) => new RegExp(`\\bexit\\s+"?\\$\\{?${name}\\b`).test(last.run ?? ''))
}

// ---- the shipped workflow ------------------------------------------------------------------------

describe('nightly-chaos workflow', () => {
  it('is scheduled with a valid 5-field cron', () => {
    expect(hasValidSchedule(workflow)).toBe(true)
  })

  it('can be dispatched by hand with a seed input', () => {
    expect(hasDispatchSeedInput(workflow)).toBe(true)
  })

  it('has exactly one job, with a timeout of at most 60 minutes', () => {
    expect(hasSingleBoundedJob(workflow)).toBe(true)
  })

  it('checks out, sets up LTS node, runs npm ci, then runs the suite with --report-dir and --compare', () => {
    expect(hasStepsInOrder(workflow)).toBe(true)
  })

  it('writes the job summary even when the suite failed', () => {
    expect(summaryStepAlwaysRuns(workflow)).toBe(true)
  })

  it('uploads the report even when the suite failed', () => {
    expect(uploadStepAlwaysRuns(workflow)).toBe(true)
  })

  it('never expands inputs or event payloads inside a run script', () => {
    expect(runScriptsAvoidInjection(workflow)).toBe(true)
  })

  it('pins every action to a version tag or a commit SHA', () => {
    expect(allUsesPinned(workflow)).toBe(true)
  })

  it('fails last, with the exit code the suite recorded', () => {
    expect(lastStepFailsOnCode(workflow)).toBe(true)
  })
})

// ---- the predicates can fail ---------------------------------------------------------------------

describe('the workflow predicates reject broken copies', () => {
  const mutants: [string, (wf: Workflow) => void, (wf: Workflow) => boolean][] = [
    [
      'a 6-field cron',
      (wf) => {
        wf.on!.schedule = [{ cron: '0 17 3 * * *' }]
      },
      hasValidSchedule,
    ],
    [
      'an out-of-range cron hour',
      (wf) => {
        wf.on!.schedule = [{ cron: '17 24 * * *' }]
      },
      hasValidSchedule,
    ],
    [
      'no seed input',
      (wf) => {
        delete wf.on!.workflow_dispatch!.inputs!.seed
      },
      hasDispatchSeedInput,
    ],
    [
      'no timeout',
      (wf) => {
        delete Object.values(wf.jobs!)[0]!['timeout-minutes']
      },
      hasSingleBoundedJob,
    ],
    [
      'a second job',
      (wf) => {
        wf.jobs!.extra = { 'runs-on': 'ubuntu-latest', 'timeout-minutes': 5, steps: [] }
      },
      hasSingleBoundedJob,
    ],
    [
      'a non-LTS node version',
      (wf) => {
        steps(wf).find((s) => usesAction(s, 'actions/setup-node'))!.with!['node-version'] = '21'
      },
      hasStepsInOrder,
    ],
    [
      'npm ci moved before checkout',
      (wf) => {
        const all = steps(wf)
        const ci = all.findIndex((s) => s.run === 'npm ci')
        all.unshift(...all.splice(ci, 1))
      },
      hasStepsInOrder,
    ],
    [
      'the summary step without if: always()',
      (wf) => {
        delete summaryStep(wf)!.if
      },
      summaryStepAlwaysRuns,
    ],
    [
      'the upload step with if: success()',
      (wf) => {
        steps(wf).find((s) => usesAction(s, 'actions/upload-artifact'))!.if = 'success()'
      },
      uploadStepAlwaysRuns,
    ],
    [
      '${{ inputs.seed }} inside a run script',
      (wf) => {
        const suite = steps(wf).find(isSuiteRun)!
        suite.run = suite.run!.replace('"${SEED}"', '"${{ inputs.seed }}"')
      },
      runScriptsAvoidInjection,
    ],
    [
      '${{ github.event.inputs.paths }} inside a run script',
      (wf) => {
        steps(wf).push({ run: 'echo ${{github.event.inputs.paths}}' })
      },
      runScriptsAvoidInjection,
    ],
    [
      'an action on a branch',
      (wf) => {
        steps(wf)[0]!.uses = 'actions/checkout@main'
      },
      allUsesPinned,
    ],
    [
      'the last step exiting 0 regardless',
      (wf) => {
        steps(wf).at(-1)!.run = 'echo "code was $CODE"; exit 0'
      },
      lastStepFailsOnCode,
    ],
    [
      'the fail step not last',
      (wf) => {
        steps(wf).push({ name: 'tidy up', run: 'rm -rf previous-report' })
      },
      lastStepFailsOnCode,
    ],
  ]

  it.each(mutants)('catches %s', (_label, mutate, predicate) => {
    // The predicate holds for the real file, so a false result below is caused by the mutation.
    expect(predicate(workflow)).toBe(true)
    const bad = structuredClone(workflow)
    mutate(bad)
    expect(predicate(bad)).toBe(false)
  })
})
