"""The rule language: condition tree, types, parser, printer, durations and dates."""
