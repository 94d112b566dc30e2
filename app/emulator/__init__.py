"""`notifygw emulator`: the local Twilio/SendGrid emulator (channels.emulator) as its own server."""
