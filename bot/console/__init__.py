"""The terminal adapter: render (Answer -> text) and session (the `advisor chat` REPL and test harness)."""
