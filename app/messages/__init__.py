"""What a tenant reads of the WhatsApp messages people sent it (GET /v1/messages)."""
