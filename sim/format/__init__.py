"""The scenario format: YAML, pydantic models, source positions, cross-reference checks."""
