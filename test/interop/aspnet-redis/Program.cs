// The ASP.NET Core member of the mixed fleet: Microsoft.AspNetCore.SignalR.StackExchangeRedis
// 10.0.15 on the same redis-server as fastify-signalr servers, with the hub contract of
// test/fixtures/fleet-hub.ts. Its channels are prefixed with the hub's full type name,
// Interop.FleetHub, which our servers take as their hubName.
//
//   dotnet AspNetRedisServer.dll --urls http://127.0.0.1:0 --Redis 127.0.0.1:6379 [--ChannelPrefix p]
//
// Prints "listening <url>" once Kestrel has started.

using Microsoft.AspNetCore.SignalR;
using StackExchange.Redis;

namespace Interop;

public static class Program
{
    public static void Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var redis = builder.Configuration.GetValue<string>("Redis") ?? "127.0.0.1:6379";
        var prefix = builder.Configuration.GetValue<string>("ChannelPrefix");

        builder.Services
            .AddSignalR()
            .AddMessagePackProtocol()
            .AddStackExchangeRedis(redis, options =>
            {
                if (!string.IsNullOrEmpty(prefix))
                {
                    options.Configuration.ChannelPrefix = RedisChannel.Literal(prefix);
                }
            });
        builder.Services.AddSingleton<IUserIdProvider, QueryStringUserIdProvider>();

        var app = builder.Build();
        app.MapHub<FleetHub>("/hubs/fleet");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            foreach (var url in app.Urls)
            {
                Console.WriteLine($"listening {url}");
            }
            Console.Out.Flush();
        });
        app.Run();
    }
}

/// <summary>User id = the `user` query-string parameter, as in the TypeScript fleet servers.</summary>
sealed class QueryStringUserIdProvider : IUserIdProvider
{
    public string? GetUserId(HubConnectionContext connection)
    {
        var user = connection.GetHttpContext()?.Request.Query["user"].ToString();
        return string.IsNullOrEmpty(user) ? null : user;
    }
}

/// <summary>The contract of test/fixtures/fleet-hub.ts.</summary>
public sealed class FleetHub : Hub
{
    public Task Send(string target, string[] names, string text)
    {
        IClientProxy proxy = target switch
        {
            "all" => Clients.All,
            "others" => Clients.Others,
            "caller" => Clients.Caller,
            "client" => Clients.Client(names[0]),
            "clients" => Clients.Clients(names),
            "allExcept" => Clients.AllExcept(names),
            "group" => Clients.Group(names[0]),
            "groups" => Clients.Groups(names),
            "groupExcept" => Clients.GroupExcept(names[0], names.Skip(1).ToArray()),
            "othersInGroup" => Clients.OthersInGroup(names[0]),
            "user" => Clients.User(names[0]),
            "users" => Clients.Users(names),
            _ => throw new HubException($"unknown target {target}")
        };
        return proxy.SendAsync("Receive", target, text);
    }

    public Task AddToGroup(string connectionId, string group) => Groups.AddToGroupAsync(connectionId, group);

    public Task RemoveFromGroup(string connectionId, string group) => Groups.RemoveFromGroupAsync(connectionId, group);

    public async Task<string> AskClient(string connectionId, string question)
    {
        try
        {
            var answer = await Clients.Client(connectionId).InvokeAsync<string>("Ask", question, CancellationToken.None);
            return "answer: " + answer;
        }
        catch (Exception e)
        {
            // The error's text travels to the caller so the test can compare it with ours
            throw new HubException(e.Message);
        }
    }
}
