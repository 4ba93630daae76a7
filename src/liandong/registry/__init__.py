"""The source registry: enterprises, outlets (loggers, limits), approved data marks, the roster.

Loaded from a YAML file (docs/registry.md), validated, and published to compacted topics that
every service materialises (`RegistryView`).
"""
