// The admin page: the official browser client (the `signalR` global) on the admin hub, a
// snapshot per interval, and the two actions. User ids, group names and connection ids come
// from clients, so every string reaches the page through textContent, never as markup.
/* global signalR */
'use strict'

const base = document.documentElement.dataset.base
const $ = (id) => document.getElementById(id)
const SVG = 'http://www.w3.org/2000/svg'
let latest
let selected = sessionStorage.getItem('signalr-admin-hub') ?? ''

function el (tag, props, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(props ?? {})) {
    if (k === 'class') node.className = v
    else if (k === 'text') node.textContent = v
    else if (k.startsWith('data-')) node.setAttribute(k, v)
    else node[k] = v
  }
  node.append(...children)
  return node
}

function svg (tag, attrs) {
  const node = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  return node
}

function age (ms) {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  return h < 24 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`
}

function bytes (n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

const TRANSPORTS = { WebSockets: 'WebSockets', ServerSentEvents: 'SSE', LongPolling: 'Long Polling' }

function setStatus (kind, text) {
  $('status').className = `pill ${kind}`
  $('status').textContent = text
}

function currentHub () {
  if (latest === undefined || latest.hubs.length === 0) return undefined
  return latest.hubs.find((h) => h.path === selected) ?? latest.hubs[0]
}

function renderTotals (s) {
  $('totalHubs').textContent = String(s.hubs.length)
  $('totalConnections').textContent = String(s.totals.connections)
  $('totalRate').textContent = String(s.totals.messagesPerSecond)
  $('totalServers').textContent = String(Math.max(0, ...s.hubs.map((h) => h.servers)))
}

function renderHubs (s, hub) {
  $('hubs').replaceChildren(...s.hubs.map((h) => el('button', {
    type: 'button',
    class: h === hub ? 'hub current' : 'hub',
    'data-path': h.path,
    onclick: () => { selected = h.path; sessionStorage.setItem('signalr-admin-hub', selected); render() }
  }, el('span', { class: 'path', text: h.path }), el('span', { class: 'count', text: String(h.connectionCount) }))))
}

function renderChart (history) {
  const chart = $('chart')
  const W = 800
  const H = 160
  const pad = 8
  const max = Math.max(1, ...history.map((p) => p[1]))
  $('axisTop').textContent = String(max)
  const nodes = []
  for (let i = 0; i <= 4; i++) {
    const y = pad + (H - 2 * pad) * i / 4
    nodes.push(svg('line', { x1: 0, x2: W, y1: y, y2: y, class: 'grid' }))
  }
  if (history.length > 0) {
    const t0 = history[0][0]
    const span = Math.max(1, history[history.length - 1][0] - t0)
    const points = history.map(([t, n]) => [history.length === 1 ? W : (t - t0) / span * W, H - pad - (H - 2 * pad) * n / max])
    const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')
    nodes.push(svg('polygon', { points: `0,${H - pad} ${line} ${points[points.length - 1][0].toFixed(1)},${H - pad}`, class: 'area' }))
    nodes.push(svg('polyline', { points: line, class: 'line' }))
    const [lx, ly] = points[points.length - 1]
    nodes.push(svg('circle', { cx: lx, cy: ly, r: 3.5, class: 'dot' }))
    $('chartRange').textContent = `peak ${max} · last ${age(span)}`
  }
  chart.replaceChildren(...nodes)
}

// Rows are kept by hub and connection id and updated in place: rebuilt on every snapshot, a
// Disconnect button would be replaced under the pointer and the click lost
const connectionRows = new Map()

function connectionRow (path, id) {
  const key = `${path} ${id}`
  let row = connectionRows.get(key)
  if (row === undefined) {
    const cells = Array.from({ length: 8 }, () => el('td'))
    const button = el('button', { type: 'button', class: 'danger', text: 'Disconnect', onclick: (e) => { disconnect(path, id, e.target) } })
    const tr = el('tr', { 'data-id': id }, ...cells, el('td', { class: 'act' }, button))
    row = { tr, cells, seen: 0 }
    connectionRows.set(key, row)
  }
  return row
}

function setCell (td, className, ...children) {
  if (td.className !== className) td.className = className
  const text = children.length === 1 && typeof children[0] === 'string' ? children[0] : undefined
  if (text !== undefined) {
    if (td.textContent !== text || td.children.length > 0) td.textContent = text
  } else {
    td.replaceChildren(...children)
  }
}

let renderCount = 0
function renderConnections (s, hub) {
  const fleet = hub !== undefined && hub.servers > 1
  $('connections').classList.toggle('fleet', fleet)
  $('hubName').textContent = hub === undefined ? '' : `on ${hub.path}`
  const pass = ++renderCount
  const rows = (hub?.connections ?? []).map((c) => {
    const row = connectionRow(hub.path, c.connectionId)
    row.seen = pass
    const [id, user, transport, protocol, groups, connected, waiting, server] = row.cells
    setCell(id, 'mono', c.connectionId)
    id.title = c.connectionId
    setCell(user, c.userId === null ? 'muted' : '', c.userId ?? '—')
    setCell(transport, '', el('span', { class: `tag t-${c.transport}`, text: TRANSPORTS[c.transport] ?? c.transport }))
    setCell(protocol, '', c.protocol)
    setCell(groups, '', el('div', { class: 'chips' }, ...c.groups.map((g) => el('span', { class: 'chip', text: g })),
      ...(c.groupCount > c.groups.length ? [el('span', { class: 'muted', text: `+${c.groupCount - c.groups.length}` })] : [])))
    setCell(connected, 'num', age(s.at - c.connectedAt))
    setCell(waiting, c.bytesWaiting > 0 ? 'num warn' : 'num', bytes(c.bytesWaiting))
    setCell(server, 'server mono', c.server ?? '')
    return row.tr
  })
  for (const [key, row] of connectionRows) if (row.seen !== pass) connectionRows.delete(key)
  const body = $('connections').tBodies[0]
  const same = body.children.length === rows.length && rows.every((tr, i) => body.children[i] === tr)
  if (!same) body.replaceChildren(...rows)
  $('empty').hidden = rows.length > 0
  const notes = []
  if (hub?.omitted > 0) notes.push(`${hub.omitted} more not listed (first ${s.maxConnections} per hub)`)
  if (hub?.unreachable > 0) notes.push(`${hub.unreachable} server(s) did not answer`)
  if (hub?.error !== undefined) notes.push(`snapshot failed: ${hub.error}`)
  $('omitted').textContent = notes.join(' · ')
}

function renderGroups (hub) {
  const groups = hub?.groups ?? []
  const users = new Map((hub?.connections ?? []).map((c) => [c.connectionId, c.userId]))
  $('groups').replaceChildren(...groups.map((g) => el('li', { 'data-group': g.name },
    el('div', { class: 'group-head' },
      el('button', { type: 'button', class: 'link', text: g.name, title: 'Send a test message to this group', onclick: () => { $('sendGroup').value = g.name; $('sendArgs').focus() } }),
      el('span', { class: 'count', text: String(g.members.length) })),
    el('div', { class: 'members' }, ...g.members.map((id) => el('span', { class: 'member', title: id, text: users.get(id) ?? id.slice(0, 8) })))
  )))
  $('noGroups').hidden = groups.length > 0
  $('groupCount').textContent = groups.length > 0 ? String(groups.length) : ''
  $('groupNames').replaceChildren(...groups.map((g) => el('option', { value: g.name })))
}

function render () {
  const s = latest
  if (s === undefined) return
  const hub = currentHub()
  renderTotals(s)
  renderHubs(s, hub)
  renderChart(s.history)
  renderConnections(s, hub)
  renderGroups(hub)
}

let shown = 0
function show (snapshot) {
  latest = snapshot
  render()
  // How many snapshots the page has drawn: lets a test (or a curious reader) wait for the next one
  document.body.dataset.snapshots = String(++shown)
}

const connection = new signalR.HubConnectionBuilder()
  .withUrl(new URL(`${base}/hub`, document.baseURI).href)
  .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (ctx) => Math.min(10_000, 500 * 2 ** ctx.previousRetryCount) })
  .configureLogging(signalR.LogLevel.Warning)
  .build()
connection.on('Snapshot', show)
connection.onreconnecting(() => { setStatus('connecting', 'reconnecting…') })
connection.onreconnected(() => {
  setStatus('live', 'live')
  connection.invoke('Snapshot').then(show, () => {})
})
connection.onclose(() => { setStatus('down', 'disconnected') })

async function disconnect (path, id, button) {
  button.disabled = true
  try {
    await connection.invoke('Disconnect', path, id)
    button.textContent = 'Closed'
  } catch (err) {
    button.disabled = false
    alertLine(errorText(err), true)
  }
}

function errorText (err) {
  const text = String(err?.message ?? err)
  const i = text.indexOf('HubException: ')
  return i >= 0 ? text.slice(i + 'HubException: '.length) : text
}

function alertLine (text, bad) {
  $('sendResult').textContent = text
  $('sendResult').className = bad ? 'result bad' : 'result good'
}

$('sendForm').addEventListener('submit', async (e) => {
  e.preventDefault()
  const hub = currentHub()
  if (hub === undefined) return alertLine('No hub to send on.', true)
  let args
  try {
    args = JSON.parse($('sendArgs').value)
    if (!Array.isArray(args)) throw new Error('not an array')
  } catch {
    return alertLine('Arguments must be a JSON array, such as ["hello"].', true)
  }
  const group = $('sendGroup').value
  const method = $('sendMethod').value
  $('sendButton').disabled = true
  try {
    const reached = await connection.invoke('SendToGroup', hub.path, group, method, args)
    alertLine(`Sent ${method} to '${group}' (${reached} connection${reached === 1 ? '' : 's'}).`, false)
  } catch (err) {
    alertLine(errorText(err), true)
  } finally {
    $('sendButton').disabled = false
  }
})

async function start () {
  try {
    await connection.start()
    setStatus('live', 'live')
    show(await connection.invoke('Snapshot'))
  } catch (err) {
    setStatus('down', `cannot connect: ${errorText(err)}`)
  }
}
start()
