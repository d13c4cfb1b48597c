// The handshake that opens every connection: always JSON text ending in 0x1E, whatever hub
// protocol follows (signalr-wire.md §3).
import { HandshakeError } from '../errors.js'
import { RECORD_SEPARATOR, decodeUtf8, frameText } from './text-framing.js'

export interface HandshakeRequest {
  protocol: string
  version: number
}

export interface HandshakeParse {
  /** undefined while the record separator has not arrived yet */
  request?: HandshakeRequest
  consumed: number
}

export function parseHandshakeRequest (data: Buffer, maxMessageSize: number): HandshakeParse {
  const end = data.indexOf(RECORD_SEPARATOR)
  if (end === -1) {
    // The .NET server answers an oversize handshake like a timeout
    if (maxMessageSize > 0 && data.length > maxMessageSize) throw new HandshakeError('Handshake was canceled.')
    return { consumed: 0 }
  }
  if (maxMessageSize > 0 && end > maxMessageSize) throw new HandshakeError('Handshake was canceled.')
  let value: unknown
  try {
    value = JSON.parse(decodeUtf8(data.subarray(0, end)))
  } catch {
    throw new HandshakeError('An unexpected error occurred during connection handshake.')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HandshakeError('An unexpected error occurred during connection handshake.')
  }
  const { protocol, version } = value as Record<string, unknown>
  if (typeof protocol !== 'string' || typeof version !== 'number' || !Number.isInteger(version)) {
    throw new HandshakeError('An unexpected error occurred during connection handshake.')
  }
  return { request: { protocol, version }, consumed: end + 1 }
}

const success = frameText('{}')

export function writeHandshakeResponse (error?: string): Buffer {
  return error === undefined ? success : frameText(JSON.stringify({ error }))
}
