// The stateful-reconnect replay buffer on its own.
import { test } from 'tap'
import { MessageBuffer } from '../lib/message-buffer.js'

const msg = (n: number): Buffer => Buffer.alloc(n, 1)

test('unacknowledged bytes stay within the bound; later messages wait for Acks, in order', async (t) => {
  const b = new MessageBuffer(100)
  t.ok(b.track(msg(40)))
  t.ok(b.track(msg(40)))
  t.equal(b.track(msg(40)), undefined, 'a third would pass the bound: it waits')
  t.equal(b.track(msg(10)), undefined, 'and so does everything after it, to keep the order')
  t.equal(b.waitingBytes, 50)
  t.same(b.ack(1).map((x) => x.length), [40, 10], 'an Ack frees room and releases the waiting messages in order')
  t.equal(b.waitingBytes, 0)
  t.same(b.replay(), { sequenceId: 2, messages: [msg(40), msg(40), msg(10)] })
  b.ack(4)
  t.same(b.replay(), { sequenceId: 5, messages: [] }, 'with nothing unacknowledged, Sequence is total sent + 1')
})

test('a single message larger than the bound still goes out when nothing else is held', async (t) => {
  const b = new MessageBuffer(10)
  t.ok(b.track(msg(50)))
})

test('inbound sequencing: duplicates after a Sequence are dropped; a Sequence too far ahead throws', async (t) => {
  const b = new MessageBuffer(100)
  t.ok(b.shouldProcess())
  t.ok(b.shouldProcess())
  t.equal(b.pendingAck(), 2)
  t.equal(b.pendingAck(), undefined, 'no new Ack until something new arrives')
  b.resetSequence(2)
  t.notOk(b.shouldProcess(), 'message 2 again: duplicate')
  t.ok(b.shouldProcess(), 'message 3 is new')
  t.throws(() => { b.resetSequence(9) }, /Sequence ID greater than amount of messages we've received/)
})
