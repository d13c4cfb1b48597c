// The names that enter the registry from application code — hub paths, group names, user
// ids, connection ids, client method names — checked against TypeBox schemas at that
// boundary, so a bad name fails loudly at the call instead of silently matching nothing.
import Type from 'typebox'
import { Compile } from 'typebox/compile'
import { InvalidArgumentError } from './errors.js'

const Name = Type.String({ minLength: 1, maxLength: 1024 })
const HubPath = Type.String({ minLength: 1, maxLength: 1024, pattern: '^/[^?#\\s]*$' })

const checks = {
  'hub path': Compile(HubPath),
  'connection path': Compile(HubPath),
  'group name': Compile(Name),
  'user id': Compile(Name),
  'connection id': Compile(Name),
  'method name': Compile(Name),
  'latest key': Compile(Name)
}

export type NameKind = keyof typeof checks

export function checkName (kind: NameKind, value: unknown): string {
  const check = checks[kind]
  if (!check.Check(value)) {
    const e = check.Errors(value)[0]
    throw new InvalidArgumentError(kind, `${JSON.stringify(value) ?? String(value)} ${e?.message ?? 'is invalid'}`)
  }
  return value as string
}

export function checkNames (kind: NameKind, values: unknown): string[] {
  if (!Array.isArray(values)) throw new InvalidArgumentError(`${kind} list`, 'must be an array')
  return values.map((v) => checkName(kind, v))
}
