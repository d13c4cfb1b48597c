// The README's "Types end to end" client: the official client, typed by the hub's schemas.
// It imports the hub as a type only, so a browser bundle carries none of the server.
import { HubConnectionBuilder, Subject } from '@microsoft/signalr'
import { typedHub } from 'fastify-signalr/client'
import type { chat } from './typed-chat.js'            // a type: nothing of the server is bundled

export async function runTypedClient (url: string): Promise<{ echoed: string, ticks: string[], lines: number, deleted: boolean, messages: string[] }> {
  const hub = typedHub<typeof chat>(new HubConnectionBuilder().withUrl(url).build())

  const messages: string[] = []
  hub.on.ReceiveMessage((user, text) => { messages.push(`${user}: ${text}`) })   // (string, string)
  hub.handle.Confirm(async (question) => question.startsWith('Delete'))          // answers a boolean
  await hub.connection.start()

  const echoed = await hub.invoke.Echo('hi')          // string
  await hub.send.Send('ann', 'hello')

  const ticks: string[] = []
  await new Promise<void>((resolve, reject) => {
    hub.stream.Ticks(3).subscribe({                    // IStreamResult<string>
      next: (tick) => { ticks.push(tick) },
      complete: resolve,
      error: reject
    })
  })

  const upload = new Subject<string>()
  const counted = hub.invoke.Upload(upload)           // Promise<number>; a Subject<number> would not compile
  upload.next('first line')
  upload.next('second line')
  upload.complete()
  const lines = await counted

  const deleted = await hub.invoke.Delete('note-1')   // the server asked Confirm and got true
  await hub.connection.stop()
  return { echoed, ticks, lines, deleted, messages }
}
