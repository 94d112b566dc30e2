"""The `notifygw emulator` command: serve channels.emulator on its own with uvicorn."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
def emulator(host: str, port: int) -> None:
    """Run the local Twilio (WhatsApp) and SendGrid emulator. State is in memory; see docs/emulator.md."""
    # On use only: every `notifygw` command loads this module, and only this one serves the emulator.
    import uvicorn

    from channels.emulator import create_emulator_app

    base = f"http://{host}:{port}"
    click.echo(
        "\n".join(
            [
                f"notifygw emulator at {base}",
                f'  Twilio SDK:   client.api.base_url = "{base}"   (or NOTIFYGW_TWILIO_API_BASE_URL={base})',
                f'  SendGrid SDK: SendGridAPIClient(key, host="{base}")   (or NOTIFYGW_SENDGRID_API_BASE_URL={base})',
                f"  make a subaccount: curl -s -X POST {base}/_emulator/twilio/accounts",
                "",
            ]
        )
    )
    uvicorn.run(create_emulator_app(), host=host, port=port, access_log=False, log_config=None)


COMMANDS = [emulator]
