// The demo in headless Chromium, used as a person would: two pages pick names, talk in the
// lobby (Enter sends and clears the box), move to a room, lose their connection and come
// back into the room, and switch transport and protocol. No request fails and nothing is
// logged as an error. The screenshot it takes is the one README.md shows (docs/demo.png),
// rewritten only when the page looks different.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { test } from 'tap'
import { buildDemo } from '../demo/app.js'
import { bundleForPage, chromiumSkip, launchChromium } from './fixtures/browser.js'
import { connect } from './fixtures/client.js'

const SCREENSHOT = fileURLToPath(new URL('../docs/demo.png', import.meta.url))
const skip = chromiumSkip('the demo browser test')

interface Watched { page: Page, problems: string[] }

test('the page script is typed by the hub and bundles without it; the hub serves its AsyncAPI document', async (t) => {
  // The bundle demo/app.ts serves, made the same way: the typed wrapper and the page, nothing else
  const { inputs } = await bundleForPage(new URL('../demo/client.ts', import.meta.url))
  t.same(inputs, ['demo/client.ts', 'lib/client/index.ts'], 'no hub, schema or server module in the page script')
  const app = await buildDemo()
  t.teardown(async () => { await app.close() })
  const contract = await app.inject('/hubs/chat/asyncapi.json')
  t.equal(contract.statusCode, 200)
  t.equal(contract.json<{ info: { title: string } }>().info.title, 'fastify-signalr demo chat')
})

test('two people chat in the demo: names, Enter, rooms, reconnect, transport switch', { skip }, async (t) => {
  const app = await buildDemo({ forceCloseConnections: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const { context, page: first } = await launchChromium(t)

  function watch (page: Page): Watched {
    const problems: string[] = []
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`) })
    page.on('pageerror', (err) => { problems.push(`page error: ${err.message}`) })
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`) })
    return { page, problems }
  }
  async function enter (w: Watched, name: string): Promise<void> {
    await w.page.goto(`${base}/`)
    await w.page.fill('#name', name)
    await w.page.press('#name', 'Enter')
    await w.page.waitForSelector('#status.connected')
  }
  const status = async (w: Watched): Promise<string> => await w.page.textContent('#status') ?? ''
  const online = async (w: Watched): Promise<string[]> => await w.page.$$eval('#online li', (lis) => lis.map((li) => li.textContent ?? ''))
  async function say (w: Watched, text: string): Promise<void> {
    await w.page.fill('#text', text)
    await w.page.press('#text', 'Enter')
  }
  async function hears (w: Watched, from: string, text: string): Promise<void> {
    await w.page.waitForFunction(([who, what]) => [...document.querySelectorAll('#log .msg')].some((m) =>
      m.querySelector('.who')?.textContent === who && m.querySelector('.text')?.textContent === what), [from, text], { timeout: 10_000 })
  }

  await first.setViewportSize({ width: 980, height: 620 })
  const ann = watch(first)
  await enter(ann, 'Ann')
  t.equal(await status(ann), 'connected · WebSockets · JSON', 'the page says which transport and protocol it uses')
  const bo = watch(await context.newPage())
  await bo.page.setViewportSize({ width: 390, height: 760 })
  await enter(bo, 'Bo')
  await ann.page.waitForFunction(() => document.querySelectorAll('#online li').length === 2)
  t.same(await online(ann), ['Ann', 'Bo'], "Ann's page lists who is in the lobby, by name")

  await say(ann, 'Hi Bo, welcome to the lobby')
  t.equal(await ann.page.inputValue('#text'), '', 'Enter sent the message and cleared the box')
  await hears(bo, 'Ann', 'Hi Bo, welcome to the lobby')
  await hears(ann, 'you', 'Hi Bo, welcome to the lobby')
  await say(bo, 'Hi Ann! Shall we move to the garden?')
  await hears(ann, 'Bo', 'Hi Ann! Shall we move to the garden?')

  // A room: both move to the garden, where a third person (the official Node client) is
  const cy = await connect(t, `${base}/hubs/chat?name=Cy`)
  await cy.invoke('Join', 'garden')
  await ann.page.click('#rooms button:text("garden")')
  await bo.page.click('#rooms button:text("garden")')
  await ann.page.waitForFunction(() => document.querySelectorAll('#online li').length === 3)
  t.same(await online(ann), ['Ann', 'Bo', 'Cy'], 'the garden lists its three people')
  t.equal(await ann.page.textContent('#roomTitle'), '# garden')
  await say(bo, 'The roses are out')
  await hears(ann, 'Bo', 'The roses are out')
  await cy.invoke('Send', 'And the tomatoes are nearly red')
  await hears(ann, 'Cy', 'And the tomatoes are nearly red')
  await say(ann, 'On my way with the watering can')
  await hears(bo, 'Ann', 'On my way with the watering can')
  t.equal(await bo.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'the phone-sized page does not scroll sideways')

  // The screenshot the README shows, taken now that there is something to see
  const png = await ann.page.screenshot()
  t.ok(png.length > 10_000, 'a screenshot of the conversation')
  if (!existsSync(SCREENSHOT) || !readFileSync(SCREENSHOT).equals(png)) writeFileSync(SCREENSHOT, png)

  // Ann's connection ends (the server closes it, allowing a reconnect): her page reconnects
  // on a new connection and goes back into the garden
  const before = await ann.page.getAttribute('#status', 'data-connection-id') ?? ''
  t.ok(before.length > 0, 'the page shows which connection it is on')
  await app.signalr.hub('/hubs/chat').close(before, { allowReconnect: true })
  await ann.page.waitForFunction((id) => {
    const status = document.querySelector<HTMLElement>('#status')
    return status?.className === 'connected' && (status.dataset.connectionId ?? '') !== '' && status.dataset.connectionId !== id
  }, before, { timeout: 15_000 })
  await say(bo, 'Welcome back, Ann')
  await hears(ann, 'Bo', 'Welcome back, Ann')
  t.same(await cy.invoke('Online', 'garden'), [{ name: 'Ann', connections: 1 }, { name: 'Bo', connections: 1 }, { name: 'Cy', connections: 1 }], 'after the reconnect Ann is in the garden again')

  // Switching transport and protocol: the page reconnects with them and stays in its room
  await bo.page.selectOption('#transport', 'LongPolling')
  await bo.page.waitForFunction(() => document.querySelector('#status')?.textContent === 'connected · Long Polling · JSON')
  await say(bo, 'now over long polling')
  await hears(ann, 'Bo', 'now over long polling')
  await bo.page.selectOption('#protocol', 'messagepack')
  await bo.page.waitForFunction(() => document.querySelector('#status')?.textContent === 'connected · Long Polling · MessagePack')
  await say(bo, 'and in MessagePack')
  await hears(ann, 'Bo', 'and in MessagePack')
  await ann.page.selectOption('#protocol', 'messagepack')
  await ann.page.selectOption('#transport', 'ServerSentEvents')
  await ann.page.waitForFunction(() => document.querySelector('#status')?.textContent === 'connected · Server-Sent Events · JSON')
  t.equal(await ann.page.inputValue('#protocol'), 'json', 'Server-Sent Events carry text only: the page goes back to JSON')
  await say(ann, 'and I am on server-sent events')
  await hears(bo, 'Ann', 'and I am on server-sent events')

  t.same(ann.problems, [], "Ann's page: no failed request (favicon included), no console error")
  t.same(bo.problems, [], "Bo's page: the same")
})
