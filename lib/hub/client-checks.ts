// The run-time half of a hub's `client` schemas: every client result is checked against its
// method's `returns`; with validateClientArguments on, every outgoing call is checked too.
import type { FastifyBaseLogger } from 'fastify'
import { InvalidClientArgumentError, InvalidClientResultError } from '../errors.js'
import type { CompiledClientMethod } from './define-hub.js'
import { validationProblem } from './validation.js'

export class ClientChecks {
  constructor (
    /** undefined: the hub declares no `client`, so there is nothing to check against. */
    private readonly methods: ReadonlyMap<string, CompiledClientMethod> | undefined,
    private readonly validateArguments: boolean,
    private readonly log: FastifyBaseLogger
  ) {}

  /** Throws FST_SIGNALR_INVALID_CLIENT_ARGUMENT when opted in and the call breaks the schemas. */
  arguments (method: string, args: readonly unknown[]): void {
    if (!this.validateArguments || this.methods === undefined) return
    const def = this.methods.get(method.toLowerCase())
    if (def === undefined) throw new InvalidClientArgumentError(method, 'the hub\'s client schemas declare no such method')
    if (args.length !== def.args.length) {
      throw new InvalidClientArgumentError(method, `it takes ${def.args.length} argument(s), not ${args.length}`)
    }
    for (let i = 0; i < args.length; i++) {
      const problem = validationProblem(def.args[i], args[i])
      if (problem !== undefined) throw new InvalidClientArgumentError(method, `argument ${i} ${problem}`)
    }
  }

  /** The client's answer if it passes `returns`; else it is logged and rejected as FST_SIGNALR_INVALID_CLIENT_RESULT. */
  result (method: string, connectionId: string, value: unknown): unknown {
    const returns = this.methods?.get(method.toLowerCase())?.returns
    if (returns === undefined) return value
    const problem = validationProblem(returns, value)
    if (problem === undefined) return returns.fromWire === undefined ? value : returns.fromWire(value)
    this.log.warn({ method, connectionId, problem }, 'signalr: a client result does not match its returns schema')
    throw new InvalidClientResultError(method, connectionId, problem)
  }
}
