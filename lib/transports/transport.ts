// What a connection needs from the transport it is bound to. Each transport (WebSockets,
// Server-Sent Events, Long Polling) turns these calls into its own I/O.

export type TransportKind = 'WebSockets' | 'ServerSentEvents' | 'LongPolling'

export const ALL_TRANSPORTS: readonly TransportKind[] = ['WebSockets', 'ServerSentEvents', 'LongPolling']

export interface Transport {
  readonly kind: TransportKind
  /** Long Polling keeps the connection alive by its polls: no Pings are sent on it. */
  readonly inherentKeepAlive: boolean
  /** Hand one or more whole, framed hub messages (or one raw connection message) to the client. */
  send (frame: Buffer, binary: boolean): void
  /**
   * Bytes the client has not taken yet: what its socket still holds, or what waits for its
   * next poll. This turn's unflushed batch does not count: it has not been offered yet.
   */
  bufferedBytes (): number
  /**
   * End the transport after what was sent has been flushed, as far as the transport allows.
   * `error`: a raw connection ended by a failure, which a transport that can tells its client
   * (a WebSocket closes with 1011, the last poll answers 500); hub connections say it in
   * their Close message instead.
   */
  close (error?: Error): void
  /** End at once, dropping what is unsent: for a client that stopped reading. */
  abort (): void
  /**
   * Stop and restart reading from the client, so that TCP pushes back on it while its
   * messages wait. Transports fed by POSTs have nothing to pause: their send endpoint waits
   * for Connection.readable() before it answers instead.
   */
  pauseReading? (): void
  resumeReading? (): void
  /**
   * Long Polling: after its connection ends, the registry keeps the transport for a
   * disconnectTimeout, so that a poll still on its way gets the last messages, then 204.
   */
  readonly lingersAfterClose?: boolean
  /** Transport-specific liveness checks, run by the shared heartbeat. */
  tick? (now: number): void
}
