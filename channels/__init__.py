"""Provider adapters (Twilio WhatsApp, SendGrid email) and the local emulator.

This package knows nothing of HTTP routes, the database or tenants: callers hand it decrypted
credentials and a message, and get back a SendResult or a classified ChannelError.
"""
