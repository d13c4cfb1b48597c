// The client side of the README's feature examples: the official JavaScript client.
import * as signalR from '@microsoft/signalr'

export async function runClient (url: string, token: string): Promise<{ items: number[], sum: number, confirmed: boolean }> {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(url, { accessTokenFactory: () => token })
    .withStatefulReconnect()               // resumes after a dropped socket, nothing lost
    .withAutomaticReconnect()
    .build()

  // Answers the server's client-result call
  connection.on('Confirm', (question: string) => question.length > 0)
  await connection.start()

  // A server stream
  const items: number[] = []
  await new Promise<void>((resolve, reject) => {
    connection.stream<number>('Counter', 5, 10).subscribe({
      next: (item) => { items.push(item) },
      complete: resolve,
      error: reject
    })
  })

  // An upload stream
  const subject = new signalR.Subject<number>()
  const sumPromise = connection.invoke<number>('Sum', subject)
  for (const n of [1, 2, 3]) subject.next(n)
  subject.complete()
  const sum = await sumPromise

  const confirmed = await connection.invoke<boolean>('Confirm', 'proceed?')
  await connection.stop()
  return { items, sum, confirmed }
}
