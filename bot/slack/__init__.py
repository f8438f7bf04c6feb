"""The Slack adapter: settings, inbound (event -> Question), render (Answer -> blocks), app (listeners), serve."""
