"""Pulumi component resources: one per module, each built from a typed, frozen Args dataclass."""
