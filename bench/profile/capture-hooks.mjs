// Loader hooks for capture.mjs: every TypeScript module's transpiled source, by URL.
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'

let dir

export async function initialize (data) {
  dir = data.dir
  mkdirSync(dir, { recursive: true })
}

export async function load (url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (dir !== undefined && url.startsWith('file:') && /\.[mc]?ts($|\?)/.test(url) && result.source != null) {
    const name = createHash('sha1').update(url).digest('hex')
    writeFileSync(`${dir}/${name}.json`, JSON.stringify({ url, source: String(result.source) }))
  }
  return result
}
