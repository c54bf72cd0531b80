// Placeholder: filled by the continual-methods issue.
