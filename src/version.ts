/** forkchaos's version, in reports and `--version` (a module of its own: `--version` loads nothing else). */
export const VERSION = '0.1.0'
