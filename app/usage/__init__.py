"""What a tenant is billed for: accepted sends per month, by channel, category and country (GET /v1/usage)."""
