"""Command-line entry points (click); nothing below this package imports click."""
