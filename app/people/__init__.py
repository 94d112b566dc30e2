"""People across tenants and notifications: tenants' contacts composed with the notify and webhook tables."""
