// What one hub's backplane reports, as counters: publishes by channel kind, failures by
// operation and reason, and reconnects. The attribute sets are a small product of bounded
// values, so each is made once.
import type { Attributes } from '@opentelemetry/api'
import type { BackplaneChannelKind, BackplaneFailure, BackplaneObserver } from '../lifetime/hub-lifetime-manager.js'
import type { Telemetry } from './telemetry.js'

export class BackplaneTelemetry implements BackplaneObserver {
  private readonly attributeCache = new Map<string, Attributes>()
  private readonly base: Attributes

  constructor (private readonly telemetry: Telemetry, hubPath: string, backplane: string) {
    this.base = { 'signalr.hub': hubPath, 'signalr.backplane': backplane }
  }

  private attributes (key: string, extra: Attributes): Attributes {
    let a = this.attributeCache.get(key)
    if (a === undefined) {
      a = { ...this.base, ...extra }
      this.attributeCache.set(key, a)
    }
    return a
  }

  published (channel: BackplaneChannelKind): void {
    this.telemetry.instruments.backplanePublishes.add(1, this.attributes(channel, { 'signalr.backplane.channel': channel }))
  }

  failed (operation: 'publish' | 'subscribe' | 'command', reason: BackplaneFailure): void {
    this.telemetry.instruments.backplaneFailures.add(1, this.attributes(`${operation}:${reason}`, { 'signalr.backplane.operation': operation, 'error.type': reason }))
  }

  reconnected (): void {
    this.telemetry.instruments.backplaneReconnects.add(1, this.base)
  }
}
