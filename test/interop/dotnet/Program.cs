// Interop scenario run with the official .NET SignalR client
// (Microsoft.AspNetCore.SignalR.Client) against a server that exposes the ScenarioHub
// contract (see bench/aspnetcore/Program.cs for the reference implementation).
//
//   dotnet run --no-build -c Release -- --url http://127.0.0.1:PORT/hubs/scenario \
//       --transport WebSockets|ServerSentEvents|LongPolling --protocol json|messagepack [--verbose]
//
// With --mode functional (and a --url that is the server's base, serving the hubs of
// test/functional-dotnet.test.ts) it checks what the official .NET client's own functional
// suite expects of a server: see RunFunctional.
//
// With --mode stateful (and a --url whose hub has Burst, Record and Received, behind a
// proxy that the test cuts mid-burst) it checks stateful reconnect instead: see RunStateful.
// With --mode sticky (and a --url of the fleet hub behind a round-robin proxy) it checks
// that sequence-numbered calls keep their order across nodes: see RunSticky.
// With --mode raw [--format Text|Binary] (and a --url of an echo connection handler) it
// drives the client's HttpConnection without the hub protocol: see RawConnectionChecks.cs.
//
// Prints one JSON line per check: {"check":"invoke-echo","ok":true,"detail":"..."}
// and finally {"summary":true,"passed":N,"failed":M}. Exit code 0 only if all checks pass.

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace InteropClient;

public static partial class Program
{
    static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(10);
    static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    static readonly TimeSpan GlobalBudget = TimeSpan.FromSeconds(55); // whole run must end < 60 s
    static readonly Stopwatch Clock = Stopwatch.StartNew();
    static readonly object OutLock = new();
    static int _passed, _failed;
    static bool _finished;

    static string _url = "";
    static HttpTransportType _transport = HttpTransportType.WebSockets;
    static string _protocol = "json";
    static bool _verbose;
    static string _mode = "scenario";
    static readonly string RunId = Guid.NewGuid().ToString("N")[..8];
    static readonly List<HubConnection> AllConnections = new();

    public static async Task<int> Main(string[] args)
    {
        if (!ParseArgs(args, out var usageError))
        {
            Console.Error.WriteLine(usageError);
            Console.Error.WriteLine("usage: InteropClient --url http://127.0.0.1:PORT/hubs/scenario " +
                "--transport WebSockets|ServerSentEvents|LongPolling --protocol json|messagepack [--verbose]");
            return 2;
        }

        if (_protocol == "messagepack" && _transport == HttpTransportType.ServerSentEvents)
        {
            Emit("unsupported", true,
                "the .NET client cannot use MessagePack over ServerSentEvents (SSE carries Text only; MessagePack needs Binary)");
            return 0;
        }

        // Hard watchdog: whatever hangs, the process ends before 60 s.
        _ = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(58));
            lock (OutLock)
            {
                if (_finished) return;
                Emit("watchdog", false, "global 58 s deadline reached; aborting run");
                PrintSummary();
                Console.Out.Flush();
                Environment.Exit(1);
            }
        });

        if (_mode == "stateful") await RunStateful();
        else if (_mode == "functional") await RunFunctional();
        else if (_mode == "sticky") await RunSticky();
        else if (_mode == "raw") await RunRaw();
        else await RunScenario();

        // Best-effort cleanup, in parallel and bounded in time (budget 55 s + 2 s < watchdog 58 s).
        HubConnection[] toDispose;
        lock (AllConnections) toDispose = AllConnections.ToArray();
        try
        {
            await Task.WhenAll(toDispose.Select(c => c.DisposeAsync().AsTask())).WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch
        {
            // ignored: a broken server must not turn into a hang here
        }

        lock (OutLock)
        {
            _finished = true;
            PrintSummary();
            Console.Out.Flush();
        }
        return _failed == 0 ? 0 : 1;
    }

    static async Task RunScenario()
    {
        HubConnection? a = null, b = null;
        // Completed when the main connection closes, whenever that happens (checked by "stop").
        var aClosed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);

        // 1. connect
        await Check("connect", async () =>
        {
            var (conn, log) = Build("a-" + RunId);
            a = conn;
            a.Closed += ex => { aClosed.TrySetResult(ex); return Task.CompletedTask; };
            await a.StartAsync();
            Require(a.State == HubConnectionState.Connected, $"state is {a.State}");
            Require(!string.IsNullOrEmpty(a.ConnectionId), "ConnectionId is null or empty");
            var protocolLine = log.FirstOrDefault(l => l.StartsWith("Using HubProtocol", StringComparison.Ordinal)) ?? "(no protocol log line)";
            var transportLine = log.FirstOrDefault(l => l.StartsWith("Starting transport '", StringComparison.Ordinal)) ?? "(no transport log line)";
            Require(protocolLine.Contains($"'{_protocol} v", StringComparison.Ordinal), $"unexpected protocol: {protocolLine}");
            Require(transportLine.Contains($"'{_transport}'", StringComparison.Ordinal), $"unexpected transport: {transportLine}");
            return $"connectionId={a.ConnectionId}; {protocolLine} {transportLine}";
        });
        if (a is null || a.State != HubConnectionState.Connected)
        {
            Emit("abort-scenario", false, "first connection failed; remaining checks not run");
            return;
        }

        // 2. invoke
        await Check("invoke-echo", async () =>
        {
            var r = await a.InvokeAsync<string>("Echo", "hi");
            Require(r == "hi", $"got {Q(r)}");
            return $"Echo(\"hi\") = {Q(r)}";
        });
        await Check("invoke-add", async () =>
        {
            var r = await a.InvokeAsync<int>("Add", 2, 3);
            Require(r == 5, $"got {r}");
            return $"Add(2,3) = {r}";
        });

        // 3. send (non-blocking) + receive the broadcast on the same connection.
        //    The payload carries a run id so runs in parallel against one server cannot confuse each other.
        var broadcastA = new Inbox<string>();
        a.On<string>("Broadcast", broadcastA.Add);
        var sendPayload = "x-" + RunId;
        await Check("send", async () =>
        {
            await a.SendAsync("SendAll", sendPayload);
            var got = await broadcastA.WaitFor(t => t == sendPayload, CheckTimeout);
            return $"SendAll({Q(sendPayload)}) -> Broadcast({Q(got)})";
        });

        // 4. broadcast reaches a second connection too.
        var broadcastB = new Inbox<string>();
        await Check("broadcast-second-connection", async () =>
        {
            var (conn, _) = Build("b-" + RunId);
            b = conn;
            b.On<string>("Broadcast", broadcastB.Add);
            await b.StartAsync();
            var payload = "y-" + RunId;
            await a.SendAsync("SendAll", payload);
            var gotA = await broadcastA.WaitFor(t => t == payload, CheckTimeout);
            var gotB = await broadcastB.WaitFor(t => t == payload, CheckTimeout);
            return $"both connections received Broadcast({Q(payload)})";
        });

        // 5. groups
        var group = "g1-" + RunId;
        var groupA = new Inbox<(string Group, string Text)>();
        var groupB = new Inbox<(string Group, string Text)>();
        a.On<string, string>("GroupMessage", (g, t) => groupA.Add((g, t)));
        b?.On<string, string>("GroupMessage", (g, t) => groupB.Add((g, t)));
        await Check("group-send", async () =>
        {
            Require(b is not null && b.State == HubConnectionState.Connected, "second connection not available");
            await a.InvokeAsync("JoinGroup", group);
            await b!.InvokeAsync("SendGroup", group, "hello");
            var got = await groupA.WaitFor(m => m.Group == group, CheckTimeout);
            Require(got.Text == "hello", $"member got GroupMessage({Q(got.Group)}, {Q(got.Text)})");
            await Task.Delay(Quiet);
            Require(groupB.Count == 0, $"non-member received {groupB.Count} GroupMessage(s)");
            return $"member got GroupMessage({Q(got.Group)}, {Q(got.Text)}); non-member got nothing in {Quiet.TotalMilliseconds} ms";
        });
        await Check("group-leave", async () =>
        {
            Require(b is not null && b.State == HubConnectionState.Connected, "second connection not available");
            await a.InvokeAsync("LeaveGroup", group);
            var before = groupA.Count;
            await b!.InvokeAsync("SendGroup", group, "after-leave");
            await Task.Delay(Quiet);
            Require(groupA.Count == before, $"left member still received {groupA.Count - before} GroupMessage(s)");
            return $"after LeaveGroup nothing arrived in {Quiet.TotalMilliseconds} ms";
        });

        // 6. users: two connections with the same ?user= both receive; a third sends.
        await Check("users", async () =>
        {
            var user = "u-" + RunId;
            var (u1, _) = Build(user);
            var (u2, _) = Build(user);
            var in1 = new Inbox<string>();
            var in2 = new Inbox<string>();
            u1.On<string>("UserMessage", in1.Add);
            u2.On<string>("UserMessage", in2.Add);
            await Task.WhenAll(u1.StartAsync(), u2.StartAsync());
            await a.InvokeAsync("SendUser", user, "hi-user");
            var g1 = await in1.WaitFor(_ => true, CheckTimeout);
            var g2 = await in2.WaitFor(_ => true, CheckTimeout);
            Require(g1 == "hi-user" && g2 == "hi-user", $"got {Q(g1)} and {Q(g2)}");
            await Task.WhenAll(u1.StopAsync(), u2.StopAsync());
            return $"both connections of user {Q(user)} got UserMessage(\"hi-user\")";
        });

        // 7. argument binding failure
        await Check("validation-error", async () =>
        {
            var ex = await Throws<HubException>(() => a.InvokeAsync<string>("Echo", 42));
            Require(ex.Message.StartsWith("Failed to invoke 'Echo'", StringComparison.Ordinal) || ex.Message.Contains("Echo"),
                $"unexpected message {Q(ex.Message)}");
            return $"HubException: {Q(ex.Message)}";
        });

        // 8. server errors
        await Check("server-error", async () =>
        {
            var ex = await Throws<HubException>(() => a.InvokeAsync("Fail"));
            const string expected = "An unexpected error occurred invoking 'Fail' on the server.";
            Require(ex.Message == expected, $"got {Q(ex.Message)}, expected {Q(expected)}");
            return $"HubException: {Q(ex.Message)}";
        });
        await Check("server-error-hubexception", async () =>
        {
            var ex = await Throws<HubException>(() => a.InvokeAsync("FailHub"));
            const string expected = "An unexpected error occurred invoking 'FailHub' on the server. HubException: boom";
            Require(ex.Message == expected, $"got {Q(ex.Message)}, expected {Q(expected)}");
            return $"HubException: {Q(ex.Message)}";
        });

        // 9. unknown method
        await Check("unknown-method", async () =>
        {
            var ex = await Throws<HubException>(() => a.InvokeAsync("NoSuchMethod"));
            const string expected = "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.";
            Require(ex.Message == expected, $"got {Q(ex.Message)}, expected {Q(expected)}");
            return $"HubException: {Q(ex.Message)}";
        });

        // 10. server-to-client streaming
        await Check("server-stream", async () =>
        {
            var items = new List<int>();
            await foreach (var i in a.StreamAsync<int>("Counter", 5, 10))
            {
                items.Add(i);
            }
            Require(items.SequenceEqual(new[] { 0, 1, 2, 3, 4 }), $"got [{string.Join(",", items)}]");
            return $"Counter(5,10) -> [{string.Join(",", items)}]";
        });
        await Check("stream-cancel", async () =>
        {
            using var cts = new CancellationTokenSource();
            var items = new List<int>();
            string ending;
            try
            {
                await foreach (var i in a.StreamAsync<int>("Counter", 100, 20, cts.Token))
                {
                    items.Add(i);
                    if (items.Count == 2)
                    {
                        cts.Cancel();
                    }
                }
                ending = "enumeration ended without exception";
            }
            catch (OperationCanceledException oce)
            {
                ending = $"enumeration threw {oce.GetType().Name}";
            }
            Require(items.Count >= 2 && items[0] == 0 && items[1] == 1, $"got [{string.Join(",", items)}]");
            Require(items.Count < 100, "stream was not cancelled");
            var echo = await a.InvokeAsync<string>("Echo", "after-cancel");
            Require(echo == "after-cancel", $"Echo after cancel returned {Q(echo)}");
            return $"items before cancel [{string.Join(",", items)}]; {ending}; Echo afterwards ok";
        });

        // 11. client-to-server (upload) streaming
        await Check("upload-stream", async () =>
        {
            var channel = Channel.CreateUnbounded<double>();
            var call = a.InvokeAsync<double>("Sum", channel.Reader);
            foreach (var n in new[] { 1.0, 2.0, 3.5 })
            {
                await channel.Writer.WriteAsync(n);
            }
            channel.Writer.Complete();
            var sum = await call;
            Require(sum == 6.5, $"got {sum}");
            return $"Sum([1,2,3.5]) = {sum}";
        });

        // 12. client results (server invokes the client and waits for the answer)
        await Check("client-result", async () =>
        {
            a.On<string, string>("Ask", q => "yes:" + q);
            var r = await a.InvokeAsync<string>("AskClient", "q1");
            Require(r == "client said: yes:q1", $"got {Q(r)}");
            return $"AskClient(\"q1\") = {Q(r)}";
        });

        // 13. server closes the connection (Context.Abort())
        await Check("server-close", async () =>
        {
            var (c, _) = Build("c-" + RunId);
            var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
            c.Closed += ex => { closed.TrySetResult(ex); return Task.CompletedTask; };
            await c.StartAsync();
            await c.SendAsync("Abort");
            var ex = await closed.Task.WaitAsync(CheckTimeout);
            Require(c.State == HubConnectionState.Disconnected, $"state is {c.State}");
            return ex is null
                ? "Closed fired with exception=null"
                : $"Closed fired with {ex.GetType().FullName}: {Q(ex.Message)}";
        });

        // 14. client stop
        await Check("stop", async () =>
        {
            if (aClosed.Task.IsCompleted)
            {
                var early = aClosed.Task.Result;
                throw new CheckFailed("connection had already closed before StopAsync: " +
                    (early is null ? "exception=null" : $"{early.GetType().FullName}: {early.Message}"));
            }
            await a.StopAsync();
            var ex = await aClosed.Task.WaitAsync(CheckTimeout);
            Require(ex is null, $"Closed fired with {ex?.GetType().FullName}: {ex?.Message}");
            Require(a.State == HubConnectionState.Disconnected, $"state is {a.State}");
            return "StopAsync completed; Closed fired with exception=null";
        });
    }


    /// <summary>
    /// Stateful reconnect (HttpConnectionOptions.UseStatefulReconnect) over WebSockets. The
    /// server's hub cuts the TCP connection (at the test's proxy) half-way through a burst
    /// of 300 server-to-client messages, then half-way through 200 client-to-server ones;
    /// the client must see every message once, in order, on the same connection, and the
    /// server must receive every one of its messages once.
    /// </summary>
    // The fleet hub (test/fixtures/fleet-hub.ts) behind a proxy that never sends two requests of
    // a connection to one node in a row: each Send to the caller comes back once, in order.
    // (The .NET client runs On handlers on a loop of their own, so a handler may run after
    // the Completion that followed its message: only the order among messages is checked.)
    static async Task RunSticky()
    {
        HubConnection? c = null;
        var got = new ConcurrentQueue<string>();
        var closed = 0;
        await Check("sticky-connect", async () =>
        {
            var builder = new HubConnectionBuilder().WithUrl(_url, _transport);
            if (_protocol == "messagepack") builder.AddMessagePackProtocol();
            c = builder.Build();
            lock (AllConnections) AllConnections.Add(c);
            c.On<string, string>("Receive", (target, text) => { if (target == "caller") got.Enqueue(text); });
            c.Closed += _ => { Interlocked.Increment(ref closed); return Task.CompletedTask; };
            await c.StartAsync();
            Require(c.State == HubConnectionState.Connected, $"state is {c.State}");
            return $"connectionId={c.ConnectionId}";
        });
        if (c is null || c.State != HubConnectionState.Connected)
        {
            Emit("abort-scenario", false, "the connection failed; remaining checks not run");
            return;
        }
        await Check("sticky-sequence", async () =>
        {
            for (var i = 0; i < 50; i++) await c.InvokeAsync("Send", "caller", Array.Empty<string>(), i.ToString());
            var until = Clock.Elapsed + CheckTimeout;
            while (got.Count < 50 && Clock.Elapsed < until) await Task.Delay(10);
            await Task.Delay(Quiet);
            var list = got.ToArray();
            Require(list.SequenceEqual(Enumerable.Range(0, 50).Select(i => i.ToString())), $"got {list.Length}: {string.Join(",", list.Take(60))}");
            Require(closed == 0 && c.State == HubConnectionState.Connected, "the connection closed");
            return "50 calls across nodes: each message once, in order";
        });
    }

    static async Task RunStateful()
    {
        HubConnection? c = null;
        var items = new ConcurrentQueue<int>();
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnecting = 0;
        string? firstId = null;

        await Check("stateful-connect", async () =>
        {
            var log = new ConcurrentQueue<string>();
            var builder = new HubConnectionBuilder()
                .WithUrl(_url, _transport, options => { options.UseStatefulReconnect = true; })
                .ConfigureLogging(logging =>
                {
                    logging.SetMinimumLevel(LogLevel.Debug);
                    logging.AddProvider(new CaptureLoggerProvider(log, _verbose));
                });
            if (_protocol == "messagepack") builder.AddMessagePackProtocol();
            c = builder.Build();
            lock (AllConnections) AllConnections.Add(c);
            c.On<int>("Item", items.Enqueue);
            c.Closed += ex => { closed.TrySetResult(ex); return Task.CompletedTask; };
            c.Reconnecting += _ => { Interlocked.Increment(ref reconnecting); return Task.CompletedTask; };
            await c.StartAsync();
            firstId = c.ConnectionId;
            Require(c.State == HubConnectionState.Connected, $"state is {c.State}");
            return $"connectionId={firstId}";
        });
        if (c is null || c.State != HubConnectionState.Connected)
        {
            Emit("abort-scenario", false, "the connection failed; remaining checks not run");
            return;
        }

        await Check("stateful-server-burst", async () =>
        {
            var n = await c.InvokeAsync<int>("Burst", 300, 2);
            var until = Clock.Elapsed + CheckTimeout;
            while (items.Count < n && Clock.Elapsed < until) await Task.Delay(10);
            await Task.Delay(Quiet);
            var got = items.ToArray();
            var missing = Enumerable.Range(0, n).Except(got).Count();
            var duplicates = got.Length - got.Distinct().Count();
            Require(got.SequenceEqual(Enumerable.Range(0, n)),
                $"got {got.Length} items: {missing} missing, {duplicates} duplicated, in order: {got.SequenceEqual(got.OrderBy(i => i))}");
            return $"{n} items across the cut, each once, in order";
        });

        await Check("stateful-client-burst", async () =>
        {
            for (var i = 0; i < 200; i++) await c.SendAsync("Record", i);
            var got = await c.InvokeAsync<int[]>("Received");
            var missing = Enumerable.Range(0, 200).Except(got).Count();
            var duplicates = got.Length - got.Distinct().Count();
            Require(got.SequenceEqual(Enumerable.Range(0, 200)),
                $"server received {got.Length}: {missing} missing, {duplicates} duplicated");
            return "the server received 200 messages across the cut, each once, in order";
        });

        await Check("stateful-same-connection", async () =>
        {
            Require(c.State == HubConnectionState.Connected, $"state is {c.State}");
            Require(c.ConnectionId == firstId, $"connection id changed from {firstId} to {c.ConnectionId}");
            Require(!closed.Task.IsCompleted, "Closed fired");
            Require(reconnecting == 0, $"Reconnecting fired {reconnecting} time(s): the hub connection was not resumed");
            var echo = await c.InvokeAsync<string>("Echo", "after");
            Require(echo == "after", $"Echo returned {Q(echo)}");
            await c.StopAsync();
            return $"still {firstId}; no Closed, no Reconnecting; Echo afterwards ok; stopped";
        });
    }

    // What src/SignalR/clients/csharp/Client/test/FunctionalTests expects of a server, against
    // the hubs test/functional-dotnet.test.ts maps under the base --url.
    static async Task RunFunctional()
    {
        HubConnection Connect(string path)
        {
            var builder = new HubConnectionBuilder().WithUrl(_url + path, _transport);
            if (_protocol == "messagepack") builder.AddMessagePackProtocol();
            var conn = builder.Build();
            lock (AllConnections) AllConnections.Add(conn);
            return conn;
        }

        await Check("functional-redirect", async () =>
        {
            // As the suite's /redirect endpoint: negotiate answers { url, accessToken }
            var c = Connect("/redirect");
            await c.StartAsync();
            var who = await c.InvokeAsync<string>("Whoami");
            Require(who.StartsWith("user-of-token-", StringComparison.Ordinal), $"Whoami returned {Q(who)}");
            await c.StopAsync();
            return $"redirected; the hub saw {Q(who)}";
        });

        await Check("functional-old-protocol", async () =>
        {
            // ServerRejectsClientWithOldProtocol
            var c = Connect("/negotiateProtocolVersion12");
            var ex = await Throws<Exception>(() => c.StartAsync());
            Require(ex.Message == "The client requested version '1', but the server does not support this version.", $"message was {Q(ex.Message)}");
            return Q(ex.Message);
        });

        HubConnection? w = null;
        await Check("functional-case-insensitive-path", async () =>
        {
            w = Connect("/HUBS/Wire");
            await w.StartAsync();
            return $"connected at /HUBS/Wire to the hub mapped at /hubs/wire";
        });
        if (w is null || w.State != HubConnectionState.Connected) return;
        var h = w;

        await Check("functional-bytes", async () =>
        {
            var sent = new byte[] { 0, 1, 2, 254, 255 };
            var described = await h.InvokeAsync<string>("DescribeBytes", sent);
            Require(described == "Uint8Array:000102feff", $"the handler saw {Q(described)}");
            var back = await h.InvokeAsync<byte[]>("EchoBytes", sent);
            Require(back.SequenceEqual(sent), $"got back {Convert.ToHexString(back)}");
            return $"byte[] in as {Q(described)}, out as byte[]";
        });

        await Check("functional-datetime", async () =>
        {
            var sent = new DateTime(2026, 12, 2, 3, 4, 5, 678, DateTimeKind.Utc);
            var described = await h.InvokeAsync<string>("DescribeDate", sent);
            Require(described == "Date:2026-12-02T03:04:05.678Z", $"the handler saw {Q(described)}");
            var back = await h.InvokeAsync<DateTime>("EchoDate", sent);
            Require(back.ToUniversalTime() == sent, $"got back {back:O} ({back.Kind})");
            return $"DateTime in as {Q(described)}, out as {back:O}";
        });

        await Check("functional-stream-throws-before-stream", async () =>
        {
            var ex = await Throws<HubException>(async () =>
            {
                await foreach (var _ in h.StreamAsync<string>("StreamThrowException", "An error occurred.")) { }
            });
            Require(ex.Message == "An unexpected error occurred invoking 'StreamThrowException' on the server.", $"message was {Q(ex.Message)}");
            return Q(ex.Message);
        });

        await Check("functional-binding-error", async () =>
        {
            var ex = await Throws<HubException>(() => h.InvokeAsync<int>("Add", 1, "x"));
            const string lead = "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.";
            Require(ex.Message.StartsWith(lead, StringComparison.Ordinal), $"message was {Q(ex.Message)}");
            return Q(ex.Message);
        });

        await Check("functional-transport", async () =>
        {
            var where = await h.InvokeAsync<string>("Where");
            var expected = $"{_transport}/{_protocol}";
            Require(where == expected, $"ctx said {Q(where)}, not {Q(expected)}");
            await h.StopAsync();
            return Q(where);
        });
    }

    // ---------------------------------------------------------------- helpers

    static (HubConnection Connection, ConcurrentQueue<string> Log) Build(string user)
    {
        var log = new ConcurrentQueue<string>();
        var sep = _url.Contains('?') ? "&" : "?";
        var builder = new HubConnectionBuilder()
            .WithUrl(_url + sep + "user=" + Uri.EscapeDataString(user), _transport)
            .ConfigureLogging(logging =>
            {
                logging.SetMinimumLevel(LogLevel.Debug);
                logging.AddProvider(new CaptureLoggerProvider(log, _verbose));
            });
        if (_protocol == "messagepack")
        {
            builder.AddMessagePackProtocol();
        }
        var conn = builder.Build();
        lock (AllConnections) AllConnections.Add(conn);
        return (conn, log);
    }

    static async Task Check(string name, Func<Task<string>> body)
    {
        var remaining = GlobalBudget - Clock.Elapsed;
        if (remaining <= TimeSpan.FromSeconds(1))
        {
            Emit(name, false, "not run: global time budget used up");
            return;
        }
        var timeout = remaining < CheckTimeout ? remaining : CheckTimeout;
        var started = Clock.Elapsed;
        try
        {
            var detail = await body().WaitAsync(timeout);
            Emit(name, true, $"{detail} ({Ms(started)})");
        }
        catch (TimeoutException) when (Clock.Elapsed - started >= timeout - TimeSpan.FromMilliseconds(50))
        {
            Emit(name, false, $"timed out after {timeout.TotalSeconds:0.#} s");
        }
        catch (CheckFailed f)
        {
            Emit(name, false, $"{f.Message} ({Ms(started)})");
        }
        catch (Exception ex)
        {
            Emit(name, false, $"{ex.GetType().FullName}: {ex.Message} ({Ms(started)})");
        }
    }

    static string Ms(TimeSpan started) => $"{(Clock.Elapsed - started).TotalMilliseconds:0} ms";

    static void Require(bool condition, string message)
    {
        if (!condition) throw new CheckFailed(message);
    }

    static async Task<T> Throws<T>(Func<Task> call) where T : Exception
    {
        try
        {
            await call();
        }
        catch (T expected)
        {
            return expected;
        }
        catch (Exception other)
        {
            throw new CheckFailed($"expected {typeof(T).Name}, got {other.GetType().FullName}: {other.Message}");
        }
        throw new CheckFailed($"expected {typeof(T).Name}, but the call succeeded");
    }

    static readonly JsonSerializerOptions JsonOut = new()
    {
        // Keep quotes and apostrophes readable in the output lines.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    static string Q(string? s) => s is null ? "null" : JsonSerializer.Serialize(s, JsonOut);

    static void Emit(string check, bool ok, string detail)
    {
        lock (OutLock)
        {
            if (_finished) return;
            if (ok) _passed++; else _failed++;
            Console.WriteLine(JsonSerializer.Serialize(new CheckLine(check, ok, detail), JsonOut));
            Console.Out.Flush();
        }
    }

    static void PrintSummary() =>
        Console.WriteLine(JsonSerializer.Serialize(new SummaryLine(true, _passed, _failed), JsonOut));

    static bool ParseArgs(string[] args, out string error)
    {
        error = "";
        string? transport = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"missing value after {args[i]}");
            try
            {
                switch (args[i])
                {
                    case "--url": _url = Next(); break;
                    case "--transport": transport = Next(); break;
                    case "--protocol": _protocol = Next().ToLowerInvariant(); break;
                    case "--verbose": _verbose = true; break;
                    case "--mode": _mode = Next(); break;
                    case "--format": _format = Enum.Parse<Microsoft.AspNetCore.Connections.TransferFormat>(Next(), ignoreCase: true); break;
                    default: error = $"unknown argument {args[i]}"; return false;
                }
            }
            catch (ArgumentException e)
            {
                error = e.Message;
                return false;
            }
        }
        if (string.IsNullOrEmpty(_url)) { error = "--url is required"; return false; }
        if (transport is null || !Enum.TryParse(transport, ignoreCase: true, out _transport)
            || _transport is not (HttpTransportType.WebSockets or HttpTransportType.ServerSentEvents or HttpTransportType.LongPolling))
        {
            error = "--transport must be WebSockets, ServerSentEvents or LongPolling";
            return false;
        }
        if (_protocol is not ("json" or "messagepack"))
        {
            error = "--protocol must be json or messagepack";
            return false;
        }
        if (_mode is not ("scenario" or "stateful" or "functional" or "sticky" or "raw"))
        {
            error = "--mode must be scenario, stateful, functional, sticky or raw";
            return false;
        }
        return true;
    }

    sealed class CheckFailed(string message) : Exception(message);
}

record CheckLine(
    [property: System.Text.Json.Serialization.JsonPropertyName("check")] string Check,
    [property: System.Text.Json.Serialization.JsonPropertyName("ok")] bool Ok,
    [property: System.Text.Json.Serialization.JsonPropertyName("detail")] string Detail);

record SummaryLine(
    [property: System.Text.Json.Serialization.JsonPropertyName("summary")] bool Summary,
    [property: System.Text.Json.Serialization.JsonPropertyName("passed")] int Passed,
    [property: System.Text.Json.Serialization.JsonPropertyName("failed")] int Failed);

/// <summary>Thread-safe list of received messages with "wait until one matches".</summary>
sealed class Inbox<T>
{
    readonly List<T> _items = new();
    readonly List<(Func<T, bool> Match, TaskCompletionSource<T> Tcs)> _waiters = new();

    public int Count { get { lock (_items) return _items.Count; } }

    public void Add(T item)
    {
        lock (_items)
        {
            _items.Add(item);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(item))
                {
                    _waiters[i].Tcs.TrySetResult(item);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    public Task<T> WaitFor(Func<T, bool> match, TimeSpan timeout)
    {
        lock (_items)
        {
            foreach (var item in _items)
            {
                if (match(item)) return Task.FromResult(item);
            }
            var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, tcs));
            return tcs.Task.WaitAsync(timeout);
        }
    }
}

/// <summary>Captures client log lines (to report the protocol and transport really used).</summary>
sealed class CaptureLoggerProvider(ConcurrentQueue<string> sink, bool echoToStderr) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new CaptureLogger(categoryName, sink, echoToStderr);
    public void Dispose() { }

    sealed class CaptureLogger(string category, ConcurrentQueue<string> sink, bool echo) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            var line = formatter(state, exception);
            if (sink.Count < 500) sink.Enqueue(line);
            if (echo) Console.Error.WriteLine($"[{logLevel}] {category}: {line}{(exception is null ? "" : " | " + exception)}");
        }
    }
}
