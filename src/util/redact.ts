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
  for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '***')
  parsed.pathname = parsed.pathname
    .split('/')
    .map((segment) => (looksLikeSecret(segment) ? '***' : segment))
    .join('/')
  return parsed.toString()
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
  const secrets = [parsed.username, parsed.password, ...parsed.searchParams.values()]
  secrets.push(...parsed.pathname.split('/').filter(looksLikeSecret))
  return secrets.filter((s) => s.length >= 4)
}

/** Replaces every secret in `text` with `***`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) out = out.split(secret).join('***')
  return out
}
