"""The `advisor` command: `entry` builds the parser and maps errors; one module per command; `common` helpers."""
