// A minimal HTTP client over node:http with a keep-alive agent: lighter per request than
// fetch (undici), so the load generator spends its CPU on the protocol, not on the client.
import http from 'node:http'

export interface HttpResponse {
  status: number
  body: Buffer
}

export function makeAgent (localAddress: string | undefined, maxSockets: number): http.Agent {
  // localAddress spreads client sockets over 127.0.0.x source addresses
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, ...(localAddress !== undefined && { localAddress }) })
}

export function request (agent: http.Agent, method: string, url: string, body?: Buffer | string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }) })
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => { req.destroy(new Error(`HTTP ${method} timed out after ${timeoutMs} ms`)) })
    req.on('error', reject)
    if (body !== undefined) req.end(body)
    else req.end()
  })
}
