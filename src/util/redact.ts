/**
 * Strips credentials from a URL before anything prints it: user info, query values, and path
 * segments that look like API keys (long runs of letters and digits, as Alchemy, Infura and
 * QuickNode put them). Non-URLs come back unchanged.
 */
export function redactUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return url
  }
  if (parsed.username || parsed.password) {
    parsed.username = '***'
    parsed.password = ''
  }
  const original = url
  for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '***')
  parsed.pathname = parsed.pathname
    .split('/')
    .map((segment) => (looksLikeSecret(segment) ? '***' : segment))
    .join('/')
  // Leave a URL with nothing to hide exactly as given (no added trailing slash).
  return secretsOf(original).length === 0 && !parsed.username ? original : parsed.toString()
}

function looksLikeSecret(segment: string) {
  return segment.length >= 16 && /^[A-Za-z0-9_-]+$/.test(segment) && /\d/.test(segment)
}

/** The substrings of `url` that `redactUrl` hides, to scrub them from free text (logs). */
export function secretsOf(url: string): string[] {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return []
  }
  // Both the raw (percent-encoded, as Anvil prints the URL) and the decoded forms.
  const raw = parsed.search.slice(1).split('&').filter(Boolean).map((pair) => pair.slice(pair.indexOf('=') + 1))
  const secrets = [parsed.username, parsed.password, ...raw, ...parsed.pathname.split('/').filter(looksLikeSecret)]
  const all = secrets.flatMap((s) => [s, safeDecode(s)])
  return [...new Set(all.filter((s) => s.length >= 3))]
}

function safeDecode(s: string) {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '))
  } catch {
    return s
  }
}

/** Replaces every secret in `text` with `***`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) out = out.split(secret).join('***')
  return out
}
