"""Click commands, one module per area; each command parses arguments and calls core code."""
