// The admin view in headless Chromium. Against the demo: it shows the live connections of two
// chat tabs, watches a third connection appear and go, disconnects one with its button (the
// client really closes), sends a test message to a room (a chat tab really shows it), and
// takes the screenshot README.md shows (docs/admin.png). With a Redis backplane: the page on
// one server lists the connections of both, and its actions reach the other server.
import { existsSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import type { Page } from 'playwright-core'
import { test } from 'tap'
import { buildDemo } from '../demo/app.js'
import signalr from '../index.js'
import { signalrAdmin } from '../lib/admin/index.js'
import { redisBackplane } from '../lib/lifetime/redis/index.js'
import { ADMIN_TOKEN, adminGuard } from './fixtures/admin.js'
import { chromiumSkip, launchChromium } from './fixtures/browser.js'
import { connect, nextCall } from './fixtures/client.js'
import { fleetHub } from './fixtures/fleet-hub.js'
import { redisClient, redisMissing, startRedis } from './fixtures/redis.js'

const SCREENSHOT = fileURLToPath(new URL('../docs/admin.png', import.meta.url))
const skip = chromiumSkip('the admin browser test')

/** Console errors, page errors and failed requests of a page: none are expected. */
function problemsOf (page: Page): string[] {
  const problems: string[] = []
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`) })
  page.on('pageerror', (err) => { problems.push(`page error: ${err.message}`) })
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`) })
  return problems
}

const baseOf = (app: { server: { address: () => unknown } }): string => {
  const address = app.server.address() as { port: number } | null
  return `http://127.0.0.1:${address?.port ?? 0}`
}

const rowIds = async (page: Page): Promise<string[]> => await page.$$eval('#connections tbody tr', (rows) => rows.map((r) => r.getAttribute('data-id') ?? ''))
const column = async (page: Page, n: number): Promise<string[]> =>
  (await page.$$eval(`#connections tbody tr td:nth-child(${n})`, (cells) => cells.map((c) => c.textContent ?? ''))).sort()

test('the admin page shows the live connections of two chat tabs in the demo, and its actions work', { skip }, async (t) => {
  const app = await buildDemo({ forceCloseConnections: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const base = baseOf(app)
  const { context, page: admin } = await launchChromium(t)
  const problems = problemsOf(admin)
  await admin.setViewportSize({ width: 1280, height: 640 })
  await admin.goto(`${base}/signalr-admin`)
  await admin.waitForSelector('#status.live')
  t.equal(await admin.textContent('#totalConnections'), '0')

  const tabs: Page[] = []
  for (const name of ['Ann', 'Bo']) {
    const tab = await context.newPage()
    await tab.goto(`${base}/`)
    await tab.fill('#name', name)
    await tab.press('#name', 'Enter')
    await tab.waitForSelector('#status.connected')
    tabs.push(tab)
  }
  await admin.waitForFunction(() => document.querySelectorAll('#connections tbody tr').length === 2)
  const tabIds = await Promise.all(tabs.map(async (tab) => await tab.getAttribute('#status', 'data-connection-id')))
  t.same((await rowIds(admin)).sort(), [...tabIds].sort(), 'one row per chat tab, by connection id')
  t.same(await column(admin, 2), ['Ann', 'Bo'], 'the users')
  t.same(await column(admin, 3), ['WebSockets', 'WebSockets'], 'the transport')
  t.same(await column(admin, 4), ['json', 'json'], 'the protocol')
  await admin.waitForFunction(() => document.querySelectorAll('#groups li[data-group="lobby"] .member').length === 2)
  t.same((await admin.$$eval('#groups li[data-group="lobby"] .member', (m) => m.map((x) => x.textContent))).sort(), ['Ann', 'Bo'], 'the lobby group and its members')
  t.equal(await admin.textContent('#totalConnections'), '2')
  t.equal(await admin.textContent('#hubs .hub.current .path'), '/hubs/chat', 'the hub, and not the admin hub')

  // A connection appears (the official Node client), then the page disconnects it
  const cy = await connect(t, `${base}/hubs/chat?name=Cy`)
  await cy.invoke('Join', 'lobby')
  const cyRow = `#connections tbody tr[data-id="${cy.connectionId as string}"]`
  await admin.waitForSelector(cyRow)
  t.equal(await admin.textContent('#totalConnections'), '3', 'it appears, and the total follows')
  // Rows are updated in place: the button a user aims at is the same element snapshot after
  // snapshot (replaced each time, it would swallow clicks on a busy page)
  const button = await admin.$(`${cyRow} button.danger`)
  const drawn = Number(await admin.$eval('body', (b) => b.dataset.snapshots))
  await admin.waitForFunction((n) => Number(document.body.dataset.snapshots) >= n + 2, drawn)
  t.ok(await button?.evaluate((b) => b.isConnected), 'the Disconnect button survived two snapshots')
  const closed = new Promise<Error | undefined>((resolve) => { cy.onclose(resolve) })
  await admin.click(`${cyRow} button.danger`)
  t.equal(await closed, undefined, 'the Disconnect button closed the client')
  await admin.waitForSelector(cyRow, { state: 'detached' })
  t.same(await column(admin, 2), ['Ann', 'Bo'], 'and it disappears from the list')

  // A test message to the lobby reaches both chat tabs
  await admin.fill('#sendGroup', 'lobby')
  await admin.fill('#sendMethod', 'Notice')
  await admin.fill('#sendArgs', '["lobby", "Maintenance at 18:00: save your work"]')
  await admin.click('#sendButton')
  await admin.waitForSelector('#sendResult.good')
  t.equal(await admin.textContent('#sendResult'), "Sent Notice to 'lobby' (2 connections).")
  for (const tab of tabs) {
    await tab.waitForFunction(() => [...document.querySelectorAll('#log .notice')].some((n) => n.textContent === 'Maintenance at 18:00: save your work'))
  }
  t.pass('both chat tabs show the test message')
  // Bad input is answered on the page, not thrown
  await admin.fill('#sendArgs', 'not json')
  await admin.click('#sendButton')
  await admin.waitForSelector('#sendResult.bad')
  await admin.fill('#sendArgs', '[]')
  await admin.fill('#sendMethod', 'no spaces allowed')
  await admin.click('#sendButton')
  await admin.waitForFunction(() => /Argument 2 is invalid/.test(document.getElementById('sendResult')?.textContent ?? ''))
  t.pass('a method name the hub refuses gets its error answer on the page')
  await admin.fill('#sendMethod', 'Notice')
  await admin.fill('#sendArgs', '["lobby", "Maintenance at 18:00: save your work"]')
  await admin.click('#sendButton')
  await admin.waitForSelector('#sendResult.good')

  // The chart has a few points by now; the screenshot the README shows
  await admin.waitForFunction(() => document.querySelectorAll('#chart polyline').length === 1)
  const png = await admin.screenshot({ fullPage: true })
  t.ok(png.length > 10_000, 'a screenshot of the admin view')
  // Ages and the chart change every second: the file is written when it is missing, or on request
  if (!existsSync(SCREENSHOT) || process.env.UPDATE_SCREENSHOTS === '1') writeFileSync(SCREENSHOT, png)
  t.same(problems, [], 'no console error, page error or failed request on the admin page')
})

const redisSkip = redisMissing()
if (redisSkip !== false) console.log(`# skipping the fleet admin browser test: ${redisSkip}`)

test('with a Redis backplane the page on one server lists the connections of both, and its actions reach the other', { skip: skip !== false ? skip : redisSkip }, async (t) => {
  const redis = await startRedis(t)
  async function server (name: string): Promise<string> {
    const client = await redisClient(t, redis, 'ioredis')
    const app = Fastify({ forceCloseConnections: true })
    await app.register(signalr, { backplane: redisBackplane({ client, serverName: name }) })
    await app.register(signalrAdmin, { onRequest: adminGuard, interval: 200 })
    app.hub('/hubs/fleet', fleetHub, { userId: (request) => (request.query as Record<string, string>).user })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    return baseOf(app)
  }
  const a = await server('node-a')
  const b = await server('node-b')
  const ann = await connect(t, `${a}/hubs/fleet?user=ann`)
  const bo = await connect(t, `${b}/hubs/fleet?user=bo`, { transport: 'ServerSentEvents' })
  await bo.invoke('AddToGroup', bo.connectionId, 'ops')

  const { context, page } = await launchChromium(t)
  const problems = problemsOf(page)
  // The application's session cookie: the browser sends it with the page, its assets and the hub's requests
  await context.addCookies([{ name: 'admin', value: ADMIN_TOKEN, url: a }])
  await page.goto(`${a}/signalr-admin`)
  await page.waitForSelector('#status.live')
  await page.waitForFunction(() => document.querySelectorAll('#connections tbody tr').length === 2)
  t.same((await rowIds(page)).sort(), [ann.connectionId, bo.connectionId].sort(), 'both servers\' connections')
  t.same(await column(page, 8), ['node-a', 'node-b'], 'each with the server that holds it')
  t.same(await column(page, 3), ['SSE', 'WebSockets'])
  t.equal(await page.textContent('#totalServers'), '2')
  await page.waitForSelector('#groups li[data-group="ops"]')

  const heard = nextCall(bo, 'Receive')
  await page.fill('#sendGroup', 'ops')
  await page.fill('#sendMethod', 'Receive')
  await page.fill('#sendArgs', '["admin", "fleet-wide hello"]')
  await page.click('#sendButton')
  t.same(await heard, ['admin', 'fleet-wide hello'], 'a test message from server A reached a group member on server B')

  const closed = new Promise<Error | undefined>((resolve) => { bo.onclose(resolve) })
  await page.click(`#connections tbody tr[data-id="${bo.connectionId as string}"] button.danger`)
  t.equal(await closed, undefined, 'Disconnect on server A closed a client of server B')
  await page.waitForFunction(() => document.querySelectorAll('#connections tbody tr').length === 1)
  t.equal(ann.state, 'Connected')
  t.same(problems, [])
})
