"""Example apps protected by wink_middleware; each docstring says how to run it against the emulator."""
