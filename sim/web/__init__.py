"""`escalation serve`: the explorer, the browser game and the class game (docs/classroom.md)."""
