"""agent-infra offline engine and CLI: plan, check, diff and cost without cloud credentials."""
