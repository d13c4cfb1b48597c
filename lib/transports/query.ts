// Query parameters as the SignalR dispatcher reads them: keys case-insensitively, the first
// value when a key repeats.

export function queryValue (query: unknown, key: string): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined
  const want = key.toLowerCase()
  for (const [k, v] of Object.entries(query as Record<string, unknown>)) {
    if (k.toLowerCase() !== want) continue
    const value = Array.isArray(v) ? v[0] : v
    return typeof value === 'string' ? value : undefined
  }
  return undefined
}
