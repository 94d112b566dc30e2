"""A local Twilio (WhatsApp) and SendGrid that the unmodified official SDKs talk to.

See docs/emulator.md. `emulator_router()` mounts it in another app; `create_emulator_app()` runs it alone.
"""

from channels.emulator.app import create_emulator_app, emulator_router
from channels.emulator.state import EmulatorState

__all__ = ["EmulatorState", "create_emulator_app", "emulator_router"]
