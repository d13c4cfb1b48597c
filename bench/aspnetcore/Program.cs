// Reference ASP.NET Core SignalR server: the ground truth the TypeScript plugin
// (fastify-signalr) is compared against, in interop tests and in benchmarks.
//
//   dotnet run -c Release -- --urls http://127.0.0.1:5000 [--DetailedErrors true]
//
// --DetailedErrors true turns on HubOptions.EnableDetailedErrors (to compare error texts in
// that mode too; test/crosscheck.test.ts does).
//
// Prints "listening <url>" on stdout once Kestrel has started.

using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;

var builder = WebApplication.CreateBuilder(args);

// Keep stdout clean apart from warnings, so the "listening" line is easy to find.
builder.Logging.SetMinimumLevel(LogLevel.Warning);

builder.Services
    .AddSignalR(options =>
    {
        // Otherwise the default hub options: MaximumParallelInvocationsPerClient = 1, etc.
        options.EnableDetailedErrors = builder.Configuration.GetValue<bool>("DetailedErrors");
    })
    .AddMessagePackProtocol(); // JSON is registered by default
// --Redis host:port: scale out through Microsoft.AspNetCore.SignalR.StackExchangeRedis (bench broadcast-redis)
var redis = builder.Configuration.GetValue<string>("Redis");
if (!string.IsNullOrEmpty(redis))
{
    builder.Services.AddSignalR().AddStackExchangeRedis(redis);
}
builder.Services.AddSingleton<IUserIdProvider, QueryStringUserIdProvider>();

var app = builder.Build();

app.MapHub<ScenarioHub>("/hubs/scenario", options =>
{
    options.Transports = HttpTransportType.WebSockets
        | HttpTransportType.ServerSentEvents
        | HttpTransportType.LongPolling;
    options.AllowStatefulReconnects = true;
});

app.Lifetime.ApplicationStarted.Register(() =>
{
    var addresses = app.Urls.Count > 0 ? app.Urls : new List<string> { "(unknown)" };
    foreach (var url in addresses)
    {
        Console.WriteLine($"listening {url}");
    }
    Console.Out.Flush();
});

app.Run();

/// <summary>User id = the `user` query-string parameter of the connection's HTTP request.</summary>
sealed class QueryStringUserIdProvider : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection)
    {
        var http = connection.GetHttpContext();
        if (http is null) return null;
        var user = http.Request.Query["user"].ToString();
        return string.IsNullOrEmpty(user) ? null : user;
    }
}

/// <summary>The scenario contract shared with the TypeScript server.</summary>
sealed class ScenarioHub : Hub
{
    public string Echo(string text) => text;

    public int Add(int a, int b) => a + b;

    public Task SendAll(string text) => Clients.All.SendAsync("Broadcast", text);

    public Task BroadcastEcho(string text) => Clients.All.SendAsync("Receive", text);

    public Task JoinGroup(string group) => Groups.AddToGroupAsync(Context.ConnectionId, group);

    public Task LeaveGroup(string group) => Groups.RemoveFromGroupAsync(Context.ConnectionId, group);

    public Task SendGroup(string group, string text) =>
        Clients.Group(group).SendAsync("GroupMessage", group, text);

    public Task SendUser(string userId, string text) =>
        Clients.User(userId).SendAsync("UserMessage", text);

    public void Fail() => throw new InvalidOperationException("secret detail");

    public void FailHub() => throw new HubException("boom");

    public async IAsyncEnumerable<int> Counter(
        int count,
        int delayMs,
        [EnumeratorCancellation] CancellationToken ct)
    {
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                await Task.Delay(delayMs, ct);
            }
            yield return i;
        }
    }

    public async Task<double> Sum(IAsyncEnumerable<double> numbers)
    {
        double total = 0;
        await foreach (var n in numbers)
        {
            total += n;
        }
        return total;
    }

    public async Task<string> AskClient(string question)
    {
        var answer = await Clients.Caller.InvokeAsync<string>("Ask", question, Context.ConnectionAborted);
        return "client said: " + answer;
    }

    public void Abort() => Context.Abort();
}
