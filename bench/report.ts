// Turns measurements into the markdown table (every figure, plus each peer's ratio to ours)
// and a hand-written SVG bar chart. No dependencies.
import type { Measurement, PeerId, PeerSpec, ScenarioSpec } from './harness.js'

export type Outcome =
  | { kind: 'ok', m: Measurement }
  | { kind: 'skipped', reason: string }
  | { kind: 'failed', reason: string }

export type Results = Map<string, Map<PeerId, Outcome>>

type MetricKey = 'rate' | 'p50Ms' | 'p99Ms' | 'kbPerConnection' | 'cpuUsPerDelivery' | 'loopP99Ms' | 'connectAllS' | 'closeAllMs' | 'broadcastAllMs'

interface Row {
  scenario: ScenarioSpec
  metric: MetricKey
  label: string
  better: 'higher' | 'lower'
}

function rowsFor (s: ScenarioSpec): Row[] {
  switch (s.kind) {
    case 'echo':
      return [
        { scenario: s, metric: 'rate', label: 'invocations/s', better: 'higher' },
        { scenario: s, metric: 'p50Ms', label: 'p50 latency, ms', better: 'lower' },
        { scenario: s, metric: 'p99Ms', label: 'p99 latency, ms', better: 'lower' },
        // What the server spends per call, whatever the load client manages to drive
        { scenario: s, metric: 'cpuUsPerDelivery', label: 'server CPU per invocation, µs', better: 'lower' }
      ]
    case 'broadcast':
      return [
        { scenario: s, metric: 'rate', label: 'deliveries/s', better: 'higher' },
        { scenario: s, metric: 'p50Ms', label: 'p50 send→receipt, ms', better: 'lower' },
        { scenario: s, metric: 'p99Ms', label: 'p99 send→receipt, ms', better: 'lower' },
        { scenario: s, metric: 'cpuUsPerDelivery', label: 'server CPU per delivery, µs', better: 'lower' }
      ]
    case 'broadcast-redis':
      return [
        { scenario: s, metric: 'rate', label: 'deliveries/s', better: 'higher' },
        { scenario: s, metric: 'p99Ms', label: 'p99 send→receipt, ms', better: 'lower' },
        { scenario: s, metric: 'cpuUsPerDelivery', label: 'server CPU per delivery (both processes), µs', better: 'lower' }
      ]
    case 'idle':
      return [{ scenario: s, metric: 'kbPerConnection', label: 'server RSS per connection, KB', better: 'lower' }]
    case 'connect':
      return [
        { scenario: s, metric: 'rate', label: 'connects/s', better: 'higher' },
        { scenario: s, metric: 'p99Ms', label: 'p99 connect time, ms', better: 'lower' }
      ]
    case 'scale':
      return [
        { scenario: s, metric: 'kbPerConnection', label: 'server RSS per connection, KB', better: 'lower' },
        { scenario: s, metric: 'loopP99Ms', label: 'event-loop delay p99, Pings running, ms', better: 'lower' },
        { scenario: s, metric: 'connectAllS', label: 'time to connect all, s', better: 'lower' },
        { scenario: s, metric: 'broadcastAllMs', label: 'one broadcast to all, until the last has it, ms', better: 'lower' },
        { scenario: s, metric: 'closeAllMs', label: 'server close of all (app.close()), ms', better: 'lower' }
      ]
  }
}

export function formatValue (metric: MetricKey, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–'
  if (metric === 'rate') return Math.round(v).toLocaleString('en-US')
  if (metric === 'kbPerConnection' || metric === 'connectAllS') return v.toFixed(1)
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toString()
}

function cell (o: Outcome | undefined, metric: MetricKey): string {
  if (o === undefined) return '–'
  if (o.kind === 'skipped') return 'n/a'
  if (o.kind === 'failed') return '**failed**'
  return formatValue(metric, o.m[metric])
}

function ratio (o: Outcome | undefined, ours: Outcome | undefined, metric: MetricKey): string {
  if (o?.kind !== 'ok' || ours?.kind !== 'ok') return '–'
  const a = o.m[metric]
  const b = ours.m[metric]
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return '–'
  const r = a / b
  return `${r < 10 ? r.toFixed(2) : r.toFixed(1)}×`
}

export function markdownTable (scenarios: ScenarioSpec[], peers: PeerSpec[], results: Results): string {
  const others = peers.filter((p) => p.id !== 'ours')
  const head = ['Scenario', 'Metric', 'fastify-signalr (ours)', ...others.map((p) => p.label), ...others.map((p) => `${p.label} ÷ ours`)]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => i < 2 ? '---' : '---:').join('|')}|`]
  for (const s of scenarios) {
    const byPeer = results.get(s.id)
    if (byPeer === undefined) continue
    const ours = byPeer.get('ours')
    for (const [i, row] of rowsFor(s).entries()) {
      const arrow = row.better === 'higher' ? '↑' : '↓'
      const cells = [
        i === 0 ? s.title : '', `${row.label} ${arrow}`, cell(ours, row.metric),
        ...others.map((p) => cell(byPeer.get(p.id), row.metric)),
        ...others.map((p) => ratio(byPeer.get(p.id), ours, row.metric))
      ]
      lines.push(`| ${cells.join(' | ')} |`)
    }
  }
  return lines.join('\n')
}

export function detailsTable (scenarios: ScenarioSpec[], peers: PeerSpec[], results: Results): string {
  const lines = ['| Scenario | Peer | server CPU % | load-client CPU % | connections | errors | notes |', '|---|---|---:|---:|---:|---:|---|']
  for (const s of scenarios) {
    const byPeer = results.get(s.id)
    if (byPeer === undefined) continue
    for (const p of peers) {
      const o = byPeer.get(p.id)
      if (o === undefined) continue
      if (o.kind !== 'ok') {
        lines.push(`| ${s.id} | ${p.label} | | | | | ${o.kind}: ${o.reason.split('\n')[0].replace(/\|/g, '/')} |`)
        continue
      }
      const m = o.m
      const pct = (v: number | undefined): string => v === undefined ? '–' : Math.round(v).toString()
      lines.push(`| ${s.id} | ${p.label} | ${pct(m.serverCpuPct)} | ${pct(m.clientCpuPct)} | ${s.kind === 'connect' ? '–' : m.connected}${m.failedConnects > 0 ? ` (+${m.failedConnects} failed)` : ''} | ${m.errorCount} | ${m.notes.join('; ').replace(/\|/g, '/')} |`)
    }
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------
// SVG: one panel per scenario (its headline metric), one bar per peer, each panel scaled to
// its own largest value.

const COLORS: Record<PeerId, string> = {
  ours: '#2563eb', 'ours-otel-metrics': '#93c5fd', 'ours-otel': '#60a5fa', 'ours-otel-sampled': '#3b82f6', ws: '#9ca3af', socketio: '#d97706', aspnetcore: '#7c3aed'
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * The scale scenarios as curves over the connection count (log axis): RSS per connection
 * and event-loop delay p99, one line per peer, side by side. Adds nothing without two points.
 */
function scaleCurves (scenarios: ScenarioSpec[], peers: PeerSpec[], results: Results, parts: string[], top: number): number {
  const scale = scenarios.filter((s) => s.kind === 'scale' && s.connections !== undefined)
  const points = (p: PeerSpec, metric: MetricKey): Array<[number, number]> => scale.flatMap((s) => {
    const o = results.get(s.id)?.get(p.id)
    const v = o?.kind === 'ok' ? o.m[metric] : undefined
    return v === undefined || !Number.isFinite(v) ? [] : [[s.connections as number, v] as [number, number]]
  })
  const drawn = peers.filter((p) => points(p, 'kbPerConnection').length > 0)
  if (drawn.length === 0 || scale.length < 2) return top
  const panels: Array<[MetricKey, string]> = [['kbPerConnection', 'server RSS per connection, KB'], ['loopP99Ms', 'event-loop delay p99 with Pings, ms']]
  const w = 320
  const h = 180
  const counts = scale.map((s) => s.connections as number)
  const lx = (n: number): number => Math.log10(n)
  const [x0, x1] = [lx(Math.min(...counts)), lx(Math.max(...counts))]
  parts.push(`<text x="16" y="${top}" class="t">Scale: one server process, idle WebSocket connections with keep-alive Pings (log axis: connections)</text>`)
  const y0 = top + 20
  panels.forEach(([metric, label], i) => {
    const left = 60 + i * (w + 90)
    const maxV = Math.max(0, ...drawn.flatMap((p) => points(p, metric).map((q) => q[1]))) * 1.15 || 1
    const px = (n: number): number => left + (x1 === x0 ? w / 2 : (lx(n) - x0) / (x1 - x0) * w)
    const py = (v: number): number => y0 + h - v / maxV * h
    parts.push(`<text x="${left}" y="${y0 - 4}" class="l">${esc(label)}</text>`)
    parts.push(`<rect x="${left}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#ddd"/>`)
    for (const n of counts) parts.push(`<text x="${px(n)}" y="${y0 + h + 14}" class="n" text-anchor="middle">${n >= 1000 ? `${n / 1000}k` : n}</text>`)
    parts.push(`<text x="${left - 4}" y="${y0 + 10}" class="n" text-anchor="end">${esc(formatValue(metric, maxV))}</text>`, `<text x="${left - 4}" y="${y0 + h}" class="n" text-anchor="end">0</text>`)
    for (const p of drawn) {
      const pts = points(p, metric)
      if (pts.length === 0) continue
      parts.push(`<polyline fill="none" stroke="${COLORS[p.id]}" stroke-width="2" points="${pts.map(([n, v]) => `${px(n).toFixed(1)},${py(v).toFixed(1)}`).join(' ')}"/>`)
      for (const [n, v] of pts) parts.push(`<circle cx="${px(n).toFixed(1)}" cy="${py(v).toFixed(1)}" r="3" fill="${COLORS[p.id]}"/>`, `<text x="${(px(n) + 5).toFixed(1)}" y="${(py(v) - 5).toFixed(1)}" class="v">${esc(formatValue(metric, v))}</text>`)
    }
  })
  const legendY = y0 + h + 32
  drawn.forEach((p, i) => {
    parts.push(`<rect x="${50 + i * 170}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[p.id]}"/>`, `<text x="${66 + i * 170}" y="${legendY}" class="l">${esc(p.label)}</text>`)
  })
  return legendY + 24
}

export function svgChart (scenarios: ScenarioSpec[], peers: PeerSpec[], results: Results, subtitle: string): string {
  const width = 820
  const labelW = 150
  const barMax = 520
  const barH = 16
  const gap = 4
  const panelPad = 34
  const parts: string[] = []
  let y = 70
  for (const s of scenarios) {
    const byPeer = results.get(s.id)
    if (byPeer === undefined) continue
    const row = rowsFor(s)[0]
    const values = peers.map((p) => {
      const o = byPeer.get(p.id)
      return o?.kind === 'ok' ? o.m[row.metric] : undefined
    })
    const max = Math.max(0, ...values.filter((v): v is number => v !== undefined && Number.isFinite(v)))
    parts.push(`<text x="16" y="${y}" class="t">${esc(s.title)} — ${esc(row.label)} (${row.better} is better)</text>`)
    y += 10
    peers.forEach((p, i) => {
      const v = values[i]
      const o = byPeer.get(p.id)
      const by = y + i * (barH + gap)
      parts.push(`<text x="${labelW - 8}" y="${by + barH - 4}" class="l" text-anchor="end">${esc(p.label)}</text>`)
      if (v === undefined || !Number.isFinite(v) || max === 0) {
        const why = o === undefined ? '–' : o.kind === 'ok' ? '–' : o.kind === 'skipped' ? `n/a: ${o.reason}` : 'failed'
        parts.push(`<text x="${labelW + 4}" y="${by + barH - 4}" class="n">${esc(why)}</text>`)
        return
      }
      const w = Math.max(1, Math.round(v / max * barMax))
      parts.push(`<rect x="${labelW}" y="${by}" width="${w}" height="${barH}" fill="${COLORS[p.id]}" rx="2"/>`)
      parts.push(`<text x="${labelW + w + 6}" y="${by + barH - 4}" class="v">${esc(formatValue(row.metric, v))}</text>`)
    })
    y += peers.length * (barH + gap) + panelPad - 10
  }
  y = scaleCurves(scenarios, peers, results, parts, y)
  const height = y + 6
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>.h{font-size:17px;font-weight:600}.s{font-size:11px;fill:#555}.t{font-size:13px;font-weight:600}.l{font-size:12px}.v{font-size:11px}.n{font-size:11px;fill:#888}</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    '<text x="16" y="24" class="h">fastify-signalr vs peers (same machine, same run)</text>',
    `<text x="16" y="42" class="s">${esc(subtitle)}</text>`,
    ...parts,
    '</svg>',
    ''
  ].join('\n')
}
