// Profiles OUR server under load and summarises where its CPU time goes.
//
//   node --import tsx bench/profile.ts [--quick] [--scenarios=echo-json,broadcast-json] [--peer=ours-otel]
//   node --import tsx bench/profile.ts summarize <file.cpuprofile> [--top=25]
//
// Each scenario starts bench/servers/fastify-signalr.ts with `node --cpu-prof` (plus a loader
// hook that saves tsx's output, so V8 positions map back to .ts lines through tsx's inline
// source maps), runs the same load as `npm run bench`, stops the server (the profile is
// written on exit) and prints the top self-time functions, time per area and our functions
// by inclusive time, counting only samples inside the measurement window.
// Profiles and summaries land in bench/results/profiles/ (git-ignored).
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  AddressPool, FD_HEADROOM, FULL, HarnessError, PEERS, QUICK, ROOT, SCENARIOS, runScenario, startServer
} from './harness.js'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
// (positionTicks are not used: tsx emits each module on one line, so they carry no position)
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

const OUT = `${ROOT}bench/results/profiles`
const LIB_URL = pathToFileURL(ROOT).href

// ---------------------------------------------------------------------------------------
// Source maps (inline, from the captured tsx output)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]))

function decodeVlq (segment: string): number[] {
  const out: number[] = []
  let value = 0
  let shift = 0
  for (const ch of segment) {
    const digit = B64_INDEX.get(ch) ?? 0
    value += (digit & 31) << shift
    if ((digit & 32) !== 0) {
      shift += 5
      continue
    }
    out.push((value & 1) === 1 ? -(value >>> 1) : value >>> 1)
    value = 0
    shift = 0
  }
  return out
}

/** For each generated line: [generatedColumn, sourceLine] pairs (0-based), in column order. */
type LineMap = Array<Array<[number, number]>>

function decodeMappings (mappings: string): LineMap {
  const lines: LineMap = []
  let srcLine = 0
  for (const text of mappings.split(';')) {
    const segs: Array<[number, number]> = []
    let genCol = 0
    if (text !== '') {
      for (const seg of text.split(',')) {
        const v = decodeVlq(seg)
        genCol += v[0]
        if (v.length >= 4) {
          srcLine += v[2]
          segs.push([genCol, srcLine])
        }
      }
    }
    lines.push(segs)
  }
  return lines
}

class SourceMaps {
  private readonly byUrl = new Map<string, LineMap | null>()

  constructor (dir: string | undefined) {
    if (dir === undefined || !existsSync(dir)) return
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.json')) continue
      const { url, source } = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as { url: string, source: string }
      const m = /\/\/# sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)\s*$/.exec(source)
      if (m === null) continue
      const map = JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) as { mappings: string }
      this.byUrl.set(url.split('?')[0], decodeMappings(map.mappings))
    }
  }

  /** 1-based original line for a 0-based generated position, or undefined. */
  line (url: string, line0: number, col0: number): number | undefined {
    const map = this.byUrl.get(url.split('?')[0])
    if (map === undefined || map === null) return undefined
    for (let l = line0; l >= 0 && l >= line0 - 5; l--) {
      const segs = map[l]
      if (segs === undefined || segs.length === 0) continue
      if (l < line0) return segs[segs.length - 1][1] + 1
      let best = segs[0]
      for (const s of segs) if (s[0] <= col0) best = s
      return best[1] + 1
    }
    return undefined
  }
}

// ---------------------------------------------------------------------------------------
// Summary

function area (cf: CallFrame): string {
  const { url, functionName } = cf
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC'
    if (functionName === '(idle)') return 'idle'
    if (functionName === '(program)') return 'V8/native (program)'
    return 'native (bindings, syscalls)'
  }
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  if (url.startsWith('node:')) return 'node core'
  if (url.startsWith(`${LIB_URL}lib/`) || url === `${LIB_URL}index.ts`) return 'fastify-signalr (lib)'
  if (url.startsWith(LIB_URL)) return 'bench server'
  return 'other'
}

function where (cf: CallFrame, maps: SourceMaps): string {
  if (cf.url === '') return ''
  const file = cf.url.startsWith(LIB_URL) ? cf.url.slice(LIB_URL.length) : cf.url.replace(/^file:\/\//, '')
  const mapped = maps.line(cf.url, cf.lineNumber, cf.columnNumber)
  return `${file}:${mapped ?? cf.lineNumber + 1}`
}

function key (cf: CallFrame): string {
  return `${cf.functionName}\u0000${cf.url}\u0000${cf.lineNumber}\u0000${cf.columnNumber}`
}

export interface SummaryOptions {
  top: number
  /** Only samples inside [from, to] (microseconds, CLOCK_MONOTONIC: the same clock as the load clients). */
  window?: { from: number, to: number }
  captureDir?: string
  title: string
}

export function summarize (profile: CpuProfile, o: SummaryOptions): string {
  const maps = new SourceMaps(o.captureDir)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  // Time of each sample = the delta to the next one
  const selfUs = new Map<number, number>()
  let t = profile.startTime
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    const dt = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0
    if (o.window !== undefined && (t < o.window.from || t > o.window.to)) continue
    const id = profile.samples[i]
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
    total += dt
  }
  const idle = [...selfUs].reduce((s, [id, us]) => s + (byId.get(id)?.callFrame.functionName === '(idle)' ? us : 0), 0)
  const busy = total - idle
  const pct = (us: number): string => busy === 0 ? '0.0' : (us / busy * 100).toFixed(1)
  const ms = (us: number): string => (us / 1000).toFixed(0)

  // Self time by function and by area
  const fnSelf = new Map<string, { cf: CallFrame, us: number }>()
  const areaSelf = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const cf = (byId.get(id) as ProfileNode).callFrame
    if (cf.functionName === '(idle)') continue
    const k = key(cf)
    const e = fnSelf.get(k) ?? { cf, us: 0 }
    e.us += us
    fnSelf.set(k, e)
    const a = area(cf)
    areaSelf.set(a, (areaSelf.get(a) ?? 0) + us)
  }

  // Inclusive time of our own functions (each sample counted once per distinct function on its stack)
  const incl = new Map<string, { cf: CallFrame, us: number }>()
  for (const [id, us] of selfUs) {
    const seen = new Set<string>()
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const cf = (byId.get(n) as ProfileNode).callFrame
      if (area(cf) !== 'fastify-signalr (lib)') continue
      const k = key(cf)
      if (seen.has(k)) continue
      seen.add(k)
      const e = incl.get(k) ?? { cf, us: 0 }
      e.us += us
      incl.set(k, e)
    }
  }

  const out: string[] = []
  out.push(`### ${o.title}`, '')
  out.push(`${ms(total)} ms sampled${o.window === undefined ? '' : ' inside the measurement window'}; busy ${ms(busy)} ms (${total === 0 ? 0 : (busy / total * 100).toFixed(0)} % of one core). Percentages below are of busy time.`, '')
  out.push('| area | self % |', '|---|---:|')
  for (const [a, us] of [...areaSelf].sort((x, y) => y[1] - x[1])) out.push(`| ${a} | ${pct(us)} |`)
  out.push('', `Top ${o.top} functions by self time:`, '', '| self % | self ms | function | where |', '|---:|---:|---|---|')
  for (const e of [...fnSelf.values()].sort((x, y) => y.us - x.us).slice(0, o.top)) {
    out.push(`| ${pct(e.us)} | ${ms(e.us)} | ${e.cf.functionName === '' ? '(anonymous)' : e.cf.functionName} | ${where(e.cf, maps)} |`)
  }
  out.push('', 'Our functions by inclusive time (self + callees):', '', '| total % | function | where |', '|---:|---|---|')
  for (const e of [...incl.values()].sort((x, y) => y.us - x.us).slice(0, o.top)) {
    out.push(`| ${pct(e.us)} | ${e.cf.functionName === '' ? '(anonymous)' : e.cf.functionName} | ${where(e.cf, maps)} |`)
  }
  return out.join('\n')
}

// ---------------------------------------------------------------------------------------
// CLI

const args = process.argv.slice(2)
const topArg = args.find((a) => a.startsWith('--top='))
const top = topArg === undefined ? 25 : Number(topArg.slice(6))

if (args[0] === 'summarize') {
  const file = args[1]
  if (file === undefined) {
    console.error('usage: bench/profile.ts summarize <file.cpuprofile> [--top=N]')
    process.exit(2)
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const capture = file.replace(/\.cpuprofile$/, '.sources')
  console.log(summarize(profile, { top, title: file, captureDir: existsSync(capture) ? capture : undefined }))
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = args.includes('--quick')
  const settings = quick ? QUICK : FULL
  const list = args.find((a) => a.startsWith('--scenarios='))?.slice(12).split(',') ?? ['echo-json', 'echo-msgpack', 'broadcast-json', 'broadcast-msgpack']
  // Ours by default; any Node peer (an OpenTelemetry variant, or the ws floor to compare with)
  const peerId = args.find((a) => a.startsWith('--peer='))?.slice(7) ?? 'ours'
  const ours = PEERS.find((p) => p.id === peerId && p.id !== 'aspnetcore')
  if (ours === undefined) {
    console.error(`--peer: one of ${PEERS.filter((p) => p.id !== 'aspnetcore').map((p) => p.id).join(', ')}`)
    process.exit(2)
  }
  const prefix = ours.id === 'ours' ? '' : `${ours.id}-`
  mkdirSync(OUT, { recursive: true })
  writeFileSync(`${OUT}/.gitignore`, '*\n!.gitignore\n')
  const sections: string[] = []
  let failed = false
  for (const id of list) {
    const scenario = SCENARIOS.find((s) => s.id === id)
    if (scenario === undefined) {
      console.error(`unknown scenario ${id}`)
      process.exit(2)
    }
    // One directory per scenario: the loader-hooks thread is profiled too (its own file);
    // the main thread's profile is the one with thread id 0 in its default name
    const profDir = `${OUT}/${prefix}${id}`
    const captureDir = `${OUT}/${prefix}${id}.sources`
    rmSync(profDir, { recursive: true, force: true })
    rmSync(captureDir, { recursive: true, force: true })
    try {
      const server = await startServer(ours, {
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
        imports: ['./bench/profile/capture.mjs'],
        // The scale scenarios read the server's probes and run its keep-alive fast, as bench/run.ts starts it
        env: { BENCH_CAPTURE_DIR: captureDir, ...(scenario.kind === 'scale' && { BENCH_STATS: '1', KEEPALIVE_MS: String(settings.scale.keepAliveMs) }) },
        ...(scenario.kind === 'scale' && { fds: (scenario.connections ?? 0) + FD_HEADROOM })
      })
      let m
      try {
        m = await runScenario(server, scenario, settings, new AddressPool())
      } finally {
        await server.stop()
      }
      const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : []
      const main = files.find((f) => f.split('.')[4] === '0')
      if (main === undefined) throw new HarnessError(`no main-thread .cpuprofile in ${profDir} (found: ${files.join(', ') || 'none'})`)
      copyFileSync(`${profDir}/${main}`, `${OUT}/${prefix}${id}.cpuprofile`)
      const figure = `${Math.round(m.rate ?? 0)}/s, p50 ${m.p50Ms?.toFixed(2)} ms, p99 ${m.p99Ms?.toFixed(2)} ms, server CPU ${Math.round(m.serverCpuPct ?? 0)} %`
      console.log(`${prefix}${id}: ${figure} (under the profiler)`)
      const profile = JSON.parse(readFileSync(`${OUT}/${prefix}${id}.cpuprofile`, 'utf8')) as CpuProfile
      const text = summarize(profile, { top, window: m.window, captureDir, title: `${scenario.title}, ${ours.label} — ${figure}` })
      sections.push(text)
      writeFileSync(`${OUT}/${prefix}${id}.md`, `${text}\n`)
      console.log(`\n${text}\n`)
    } catch (err) {
      if (!(err instanceof HarnessError)) throw err
      failed = true
      console.error(`${id}: FAILED: ${err.message}`)
    }
  }
  writeFileSync(`${OUT}/${prefix}summary.md`, `# CPU profile of ${ours.label} (${quick ? 'quick' : 'full'} load)\n\n${sections.join('\n\n')}\n`)
  console.log(`wrote bench/results/profiles/${prefix}summary.md, ${prefix}<scenario>.md and ${prefix}<scenario>.cpuprofile (open those in Chrome DevTools or speedscope)`)
  process.exit(failed ? 1 : 0)
}
