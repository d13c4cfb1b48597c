// --mode raw: the .NET client's HttpConnection (Microsoft.AspNetCore.Http.Connections.Client),
// without the hub protocol, against an echo connection handler (app.signalrConnection) that
// ends the connection when it receives "bye". --format Text|Binary picks the transfer format.

using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.Extensions.Logging.Abstractions;

namespace InteropClient;

public static partial class Program
{
    static TransferFormat _format = TransferFormat.Text;

    // Its checks, in order, are RAW_CHECKS in test/fixtures/dotnet.ts
    static async Task RunRaw()
    {
        HttpConnection? connection = null;
        var text = _format == TransferFormat.Text;
        const string Tail = "héllo ✓";
        byte[] Payload(int n) => text ? Encoding.UTF8.GetBytes(new string('x', n - Encoding.UTF8.GetByteCount(Tail)) + Tail) : RandomNumberGenerator.GetBytes(n);

        await Check("raw-connect", async () =>
        {
            connection = new HttpConnection(new HttpConnectionOptions { Url = new Uri(_url), Transports = _transport, DefaultTransferFormat = _format }, NullLoggerFactory.Instance);
            await connection.StartAsync(_format);
            Require(!string.IsNullOrEmpty(connection.ConnectionId), "no ConnectionId");
            return $"connectionId={connection.ConnectionId}, {_transport}, {_format}";
        });
        if (connection is null) return;
        var c = connection;

        await Check("raw-echo", async () =>
        {
            var sent = text ? Encoding.UTF8.GetBytes("Hello World!") : new byte[] { 0, 0x1e, 0x0a, 0x0d, 0xff, 0x80 };
            await c.Transport.Output.WriteAsync(sent);
            var got = await ReadBytes(c.Transport.Input, sent.Length);
            Require(got.AsSpan().SequenceEqual(sent), $"got {Convert.ToHexString(got)}");
            return $"{sent.Length} bytes back exactly";
        });

        await Check("raw-echo-limit", async () =>
        {
            var sent = Payload(32768);
            await c.Transport.Output.WriteAsync(sent);
            var got = await ReadBytes(c.Transport.Input, sent.Length);
            Require(got.AsSpan().SequenceEqual(sent), $"{got.Length} bytes came back, not the {sent.Length} sent");
            return "32768 bytes (the server's limit) back exactly";
        });

        await Check("raw-echo-many", async () =>
        {
            var all = new MemoryStream();
            for (var i = 0; i < 100; i++)
            {
                var m = Encoding.UTF8.GetBytes($"message {i};");
                all.Write(m);
                await c.Transport.Output.WriteAsync(m);
            }
            var sent = all.ToArray();
            var got = await ReadBytes(c.Transport.Input, sent.Length);
            Require(got.AsSpan().SequenceEqual(sent), "the bytes differ");
            return $"100 messages, {sent.Length} bytes, back in order";
        });

        await Check("raw-server-close", async () =>
        {
            await c.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes("bye"));
            for (;;)
            {
                var result = await c.Transport.Input.ReadAsync();
                var extra = result.Buffer.Length;
                c.Transport.Input.AdvanceTo(result.Buffer.End);
                Require(extra == 0, $"{extra} unexpected bytes after bye");
                if (result.IsCompleted) break;
            }
            await c.DisposeAsync();
            return "the handler's return ended the client's input";
        });
    }

    /** Reads until `count` bytes have arrived (the transports keep no message boundaries in a pipe). */
    static async Task<byte[]> ReadBytes(PipeReader input, int count)
    {
        var got = new MemoryStream();
        while (got.Length < count)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer) got.Write(segment.Span);
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted && got.Length < count) throw new CheckFailed($"the connection ended after {got.Length} of {count} bytes");
        }
        return got.ToArray();
    }
}
