"""agent-infra policy library: the rules, the instance catalog and the pack assembly.

Importable without starting a server; only ``policies/__main__.py`` constructs the PolicyPack.
"""
