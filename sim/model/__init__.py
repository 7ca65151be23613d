"""The compiled model: expressions, policies, the rules and the order of a step."""
