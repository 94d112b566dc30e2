"""The endpoint URL guard: the media SSRF rules, with reasons worded for an endpoint."""

from __future__ import annotations

import pytest

from app.endpoints import urls


async def test_https_only_outside_dev():
    with pytest.raises(urls.RefusedUrl, match=r"^URL must use https, not 'http'"):
        await urls.vet("http://93.184.215.14/hook", allow_http=False, trusted_hosts=())
    target = await urls.vet("https://93.184.215.14/hook", allow_http=False, trusted_hosts=())
    assert str(target.pinned) == "93.184.215.14"


async def test_http_is_allowed_only_when_asked():
    target = await urls.vet("http://93.184.215.14/hook", allow_http=True, trusted_hosts=())
    assert target.host == "93.184.215.14"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("https://10.0.0.1/hook", "private address"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata endpoint"),
        ("https://localhost/hook", "loopback address"),
        ("https://127.0.0.1:8443/hook", "loopback address"),
        ("https://[::ffff:10.0.0.1]/hook", "private address"),
        ("https://2130706433/hook", "loopback address"),  # 127.0.0.1 spelled as one integer
    ],
)
async def test_internal_addresses_are_refused(url, reason):
    with pytest.raises(urls.RefusedUrl, match=reason):
        await urls.vet(url, allow_http=False, trusted_hosts=())


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://93.184.215.14/hook", "must use https"),
        ("https://user:pw@93.184.215.14/hook", "must not carry credentials"),
        ("https:///hook", "has no host"),
        ("https://93.184.215.14:99999/hook", "malformed"),
    ],
)
async def test_malformed_urls_are_refused(url, reason):
    with pytest.raises(urls.RefusedUrl, match=reason):
        await urls.vet(url, allow_http=False, trusted_hosts=())


async def test_trusted_hosts_pass_without_address_check(monkeypatch):
    with pytest.raises(urls.RefusedUrl):
        await urls.vet("http://127.0.0.1:9/hook")
    monkeypatch.setattr(urls, "EXTRA_TRUSTED_HOSTS", {"127.0.0.1:9"})
    target = await urls.vet("http://127.0.0.1:9/hook")
    assert target.pinned is None  # trusted: sent to the host as named
    with pytest.raises(urls.RefusedUrl, match="loopback"):  # the trust is for that port only
        await urls.vet("http://127.0.0.1:10/hook")


def test_pinned_request_goes_to_the_vetted_address_with_the_real_name():
    import ipaddress

    from channels.media import _Target

    target = _Target(
        "https://hooks.example.com:8443/in?x=1", "hooks.example.com", ipaddress.ip_address("93.184.215.14")
    )
    url, headers, extensions = urls.pinned_request(target)
    assert url == "https://93.184.215.14:8443/in?x=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


async def test_trusted_media_hosts_do_not_open_endpoint_urls(client, monkeypatch):
    """Issue 11, §12: the emulator trusted for media (NOTIFYGW_TRUSTED_MEDIA_HOSTS) was a valid endpoint URL too."""
    import dataclasses

    from tests.conftest import EMULATOR_URL
    from tests.factories import tenant_with_key

    settings = urls.get_settings()
    media_only = dataclasses.replace(settings, webhook_endpoint_allowed_hosts=())
    assert EMULATOR_URL.removeprefix("http://") in media_only.trusted_media_hosts
    monkeypatch.setattr(urls, "get_settings", lambda: media_only)
    _, admin = await tenant_with_key(client, ["admin"])
    body = {"url": f"{EMULATOR_URL}/hook", "events": ["message.received"]}
    r = await client.post("/v1/webhook-endpoints", json=body, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/url", r.text
    assert "loopback" in r.json()["detail"]
    # Allowed by the endpoints' own setting, the same URL is accepted.
    monkeypatch.setattr(
        urls,
        "get_settings",
        lambda: dataclasses.replace(
            settings, trusted_media_hosts=(), webhook_endpoint_allowed_hosts=(EMULATOR_URL.removeprefix("http://"),)
        ),
    )
    assert (await client.post("/v1/webhook-endpoints", json=body, headers=admin)).status_code == 201


def test_endpoint_allowed_hosts_are_read_from_their_own_variable():
    from app.core.config import load_settings

    env = {
        "NOTIFYGW_DATABASE_URL": "sqlite+aiosqlite:///x.db",
        "NOTIFYGW_OPERATOR_TOKEN": "t",
        "NOTIFYGW_ENCRYPTION_KEYS": "t1:" + "M" * 43,
        "NOTIFYGW_PEPPER": "p",
        "NOTIFYGW_TRUSTED_MEDIA_HOSTS": "media.internal:8025",
        "NOTIFYGW_WEBHOOK_ENDPOINT_ALLOWED_HOSTS": " hooks.internal:9000, receiver ",
    }
    s = load_settings(env, dev=False)
    assert s.webhook_endpoint_allowed_hosts == ("hooks.internal:9000", "receiver")
    assert s.trusted_media_hosts == ("media.internal:8025",)
