export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}
export function report(title: string, rows: [string, number[]][]) {
  console.log(`\n${title}`)
  for (const [name, xs] of rows)
    console.log(`  ${name.padEnd(34)} n=${String(xs.length).padStart(4)}  median ${median(xs).toFixed(3)}  p90 ${percentile(xs, 90).toFixed(3)}`)
}
