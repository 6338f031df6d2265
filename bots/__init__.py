"""Adapters: one per transport. Each turns provider payloads into core values and back."""
