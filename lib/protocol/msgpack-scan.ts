// A structural pass over one MessagePack value before it is decoded. @msgpack/msgpack
// allocates an array or map as soon as it reads the header, from the count the header
// declares: `dc ff ff` is three bytes asking for 65,535 slots, and a few thousand of them
// nested in one 30 KB message asked for gigabytes. Every element takes at least one byte, so
// no honest count can exceed the bytes that remain; this pass checks that (and every str,
// bin and ext length) without allocating anything but a stack bounded by the depth limit,
// and only then lets the decoder build the value. Its cost is linear in the bytes.
import { InvalidMessageError } from '../errors.js'

/** Deepest nesting of arrays and maps accepted in one message (the hub message's own array counts). */
export const MAX_MESSAGEPACK_DEPTH = 100

export interface ScanResult {
  /** Offsets of the str bodies of map keys spelled `__proto__`. */
  protoKeys: readonly number[]
}

const PROTO = Buffer.from('__proto__')

function fail (text: string): never {
  throw new InvalidMessageError(`Error reading MessagePack: ${text}`)
}

/**
 * Checks that `bytes` hold exactly one well-formed MessagePack value whose every declared
 * length fits in what follows it, nested at most `maxDepth` deep. Throws
 * FST_SIGNALR_INVALID_MESSAGE otherwise.
 */
export function scanMessagePack (bytes: Uint8Array, maxDepth = MAX_MESSAGEPACK_DEPTH): ScanResult {
  // No closures and no DataView: this runs for every message a client sends
  const end = bytes.length
  // Children still to read in each open container; maps count keys and values
  const left: number[] = []
  const isMap: boolean[] = []
  let protoKeys: number[] | undefined
  let pos = 0
  let topRead = false

  while (true) {
    // Finished containers leave the stack only now, so that its height is the nesting depth
    while (left.length > 0 && left[left.length - 1] === 0) {
      left.pop()
      isMap.pop()
    }
    let key = false
    const depth = left.length
    if (depth === 0) {
      if (topRead) break
      topRead = true
    } else {
      // A map's children alternate key, value: an even count left means a key comes next
      key = isMap[depth - 1] && left[depth - 1] % 2 === 0
      left[depth - 1]--
    }
    if (pos >= end) fail('the message ends inside a value.')
    const b = bytes[pos++]
    // Fixed-size values: how many bytes follow the type byte
    let skip = -1
    // Containers: the declared count, and whether it is a map
    let count = -1
    let map = false
    // Strings, bins and exts: the declared length (an ext adds its type byte)
    let length = -1
    let lengthBytes = 0
    let what = ''
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      skip = 0
    } else if (b <= 0x8f) {
      count = b & 0x0f
      map = true
    } else if (b <= 0x9f) {
      count = b & 0x0f
    } else if (b <= 0xbf) {
      length = b & 0x1f
      what = 'a string'
    } else {
      switch (b) {
        case 0xca: case 0xce: case 0xd2: skip = 4; break
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break
        case 0xcc: case 0xd0: skip = 1; break
        case 0xcd: case 0xd1: skip = 2; break
        case 0xd4: skip = 2; break
        case 0xd5: skip = 3; break
        case 0xd6: skip = 5; break
        case 0xd7: skip = 9; break
        case 0xd8: skip = 17; break
        case 0xc4: lengthBytes = 1; what = 'a bin'; break
        case 0xc5: lengthBytes = 2; what = 'a bin'; break
        case 0xc6: lengthBytes = 4; what = 'a bin'; break
        case 0xc7: lengthBytes = 1; what = 'an ext'; break
        case 0xc8: lengthBytes = 2; what = 'an ext'; break
        case 0xc9: lengthBytes = 4; what = 'an ext'; break
        case 0xd9: lengthBytes = 1; what = 'a string'; break
        case 0xda: lengthBytes = 2; what = 'a string'; break
        case 0xdb: lengthBytes = 4; what = 'a string'; break
        case 0xdc: lengthBytes = 2; what = 'an array'; break
        case 0xdd: lengthBytes = 4; what = 'an array'; break
        case 0xde: lengthBytes = 2; what = 'a map'; map = true; break
        case 0xdf: lengthBytes = 4; what = 'a map'; map = true; break
        default: fail(`unknown type byte 0x${b.toString(16)}.`)
      }
    }
    if (skip >= 0) {
      if (skip > end - pos) fail(`a number declares ${skip} bytes but only ${end - pos} remain.`)
      pos += skip
      continue
    }
    if (lengthBytes > 0) {
      if (lengthBytes > end - pos) fail(`a length declares ${lengthBytes} bytes but only ${end - pos} remain.`)
      let n = 0
      // Multiplication keeps a 32-bit length positive
      for (let i = 0; i < lengthBytes; i++) n = n * 256 + bytes[pos++]
      if (what === 'an array' || what === 'a map') count = n
      else length = what === 'an ext' ? n + 1 : n
    }
    if (count >= 0) {
      const children = map ? count * 2 : count
      // Each child takes at least one byte: a larger count can only be a lie
      if (children > end - pos) fail(`${map ? 'a map' : 'an array'} declares ${count} ${map ? 'entries' : 'elements'} but only ${end - pos} bytes remain.`)
      if (children === 0) continue
      if (left.length >= maxDepth) fail(`values are nested deeper than ${maxDepth} levels.`)
      left.push(children)
      isMap.push(map)
      continue
    }
    if (length > end - pos) fail(`${what} declares ${length} bytes but only ${end - pos} remain.`)
    if (key && length === PROTO.length && isProto(bytes, pos)) (protoKeys ??= []).push(pos)
    pos += length
  }
  if (pos !== end) fail(`extra ${end - pos} byte(s) after the message.`)
  return { protoKeys: protoKeys ?? NONE }
}

const NONE: readonly number[] = []

function isProto (bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < PROTO.length; i++) if (bytes[at + i] !== PROTO[i]) return false
  return true
}
