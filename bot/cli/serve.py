"""`advisor serve slack|discord|console` and `advisor chat`: run the bot on a platform from the registry."""

from __future__ import annotations


def register(sub, common) -> None:
    """Add `serve` and `chat` to the `advisor` parser (`common` holds the shared options)."""
    serve = sub.add_parser("serve", help="run the bot on a platform")
    platforms = serve.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    slack = platforms.add_parser("slack", parents=[common], help="the Slack app (Socket Mode, or --http)")
    slack.add_argument("--http", action="store_true", help="serve the HTTP Events API instead of Socket Mode")
    slack.add_argument("--port", type=int, default=3000, help="HTTP port with --http (default 3000)")
    slack.add_argument("--host", default="127.0.0.1",
                       help="address to listen on with --http (default 127.0.0.1; 0.0.0.0 in a container)")
    platforms.add_parser("discord", parents=[common], help="the Discord app")
    platforms.add_parser("console", parents=[common], help="chat in this terminal")
    serve.set_defaults(func=cmd_serve)
    chat = sub.add_parser("chat", parents=[common], help="chat in this terminal (same as `serve console`)")
    chat.set_defaults(func=cmd_serve, platform="console")


def cmd_serve(args) -> int:
    """Run one platform's adapter, chosen by name in bot.platforms (its SDK imported only now)."""
    from bot.cli.common import settings
    from bot.platforms import runner

    return runner(args.platform)(settings(args), args) or 0
