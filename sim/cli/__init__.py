"""The `escalation` command line: `main` parses, then imports only the chosen command."""
