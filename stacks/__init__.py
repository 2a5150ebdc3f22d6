"""Environment stacks: read and validate config once, build component args, wire components together."""
