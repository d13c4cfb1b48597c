// `npm run demo` as a person uses it: the server script started as is, and its page in two
// headless Chromium tabs chatting through the typed client (demo/client.ts).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { test } from 'tap'
import { chromiumSkip, fromRoot, launchChromium } from './fixtures/browser.js'

const skip = chromiumSkip('the demo page test')

async function startDemo (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(fromRoot('demo/server.ts'))], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  })
  return await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { reject(new Error(`the demo did not start: ${out}`)) }, 60_000)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)
      if (m !== null) { clearTimeout(timer); resolve(m[1]) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the demo exited with ${String(code)}: ${out}`)) })
  })
}

test('the demo page chats through the typed client, and its script bundles without the server', { skip }, async (t) => {
  // The bundle demo/server.ts serves, made the same way: the wrapper and the page, nothing else
  const bundle = await build({
    entryPoints: [fileURLToPath(fromRoot('demo/client.ts'))],
    bundle: true, write: false, metafile: true, format: 'esm', platform: 'browser', target: 'es2022', logLevel: 'silent'
  })
  t.same(Object.keys(bundle.metafile.inputs).sort(), ['demo/client.ts', 'lib/client/index.ts'], 'no hub, schema or server module in the page script')

  const base = await startDemo(t)
  const contract = await fetch(`${base}/hubs/chat/asyncapi.json`)
  t.equal(contract.status, 200, 'the demo serves its hub\'s AsyncAPI document')
  t.equal((await contract.json() as { info: { title: string } }).info.title, 'fastify-signalr demo chat')

  const { context, page: a } = await launchChromium(t)
  const b = await context.newPage()
  const errors: string[] = []
  for (const p of [a, b]) p.on('pageerror', (err) => { errors.push(err.message) })
  for (const p of [a, b]) {
    await p.goto(`${base}/`)
    await p.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('connected over') === true, undefined, { timeout: 10_000 })
  }
  await a.fill('#user', 'ann')
  await a.fill('#text', 'hello from a')
  await a.click('#send')
  await b.waitForFunction(() => document.getElementById('log')?.textContent?.includes('ann: hello from a') === true, undefined, { timeout: 10_000 })
  t.pass('a message from one tab reaches the other through hub.on.ReceiveMessage')

  await b.click('#join')
  await b.waitForFunction(() => document.getElementById('log')?.textContent?.includes('joined lobby: 1 member(s)') === true, undefined, { timeout: 10_000 })
  t.pass('hub.invoke.JoinRoom resolves with the members')

  await a.fill('#text', 'x'.repeat(201))
  await a.click('#send')
  await a.waitForFunction(() => document.querySelector('#log .error')?.textContent?.includes('must not have more than 200 characters') === true, undefined, { timeout: 10_000 })
  t.pass('a too-long message shows the server\'s validation error')
  t.same(errors, [], 'no uncaught errors in the pages')
})
