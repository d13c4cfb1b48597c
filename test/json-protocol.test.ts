import { test } from 'tap'
import { jsonHubProtocol } from '../lib/protocol/json.js'

const RS = '\u001e'

test('writes a void Completion with result null, fields in .NET order', async (t) => {
  const bytes = jsonHubProtocol.write({ type: 3, invocationId: '0', hasResult: true })
  t.equal(bytes.toString('utf8'), '{"type":3,"invocationId":"0","result":null}' + RS)
})
