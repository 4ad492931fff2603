"""Parsers that turn a model's raw text into reasoning and tool-call events, per model family."""
