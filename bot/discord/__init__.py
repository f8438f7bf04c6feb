"""The Discord adapter: settings, inbound (message -> Question), render (Answer -> embed), app (handlers), serve."""
