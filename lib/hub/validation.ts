// Checking a value against a compiled TypeBox schema without letting the check itself fail.
import type { Validator } from './define-hub.js'

/**
 * Why a value fails its schema, or undefined when it passes. A recursive schema meeting a
 * deeply nested value can exhaust the stack: that counts as invalid, not as a crash.
 */
export function validationProblem (validator: Validator, value: unknown): string | undefined {
  try {
    if (validator.Check(value)) return undefined
    const e = validator.Errors(value)[0]
    const where = e === undefined || e.instancePath === '' ? '' : `${e.instancePath} `
    return `${where}${e?.message ?? 'does not match its schema'}`
  } catch {
    return 'is too deeply nested to validate'
  }
}
