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


@pytest.mark.parametrize("url, reason", [
    ("https://10.0.0.1/hook", "private address"),
    ("https://169.254.169.254/latest/meta-data", "cloud metadata endpoint"),
    ("https://localhost/hook", "loopback address"),
    ("https://127.0.0.1:8443/hook", "loopback address"),
    ("https://[::ffff:10.0.0.1]/hook", "private address"),
    ("https://2130706433/hook", "loopback address"),  # 127.0.0.1 spelled as one integer
])
async def test_internal_addresses_are_refused(url, reason):
    with pytest.raises(urls.RefusedUrl, match=reason):
        await urls.vet(url, allow_http=False, trusted_hosts=())


@pytest.mark.parametrize("url, reason", [
    ("ftp://93.184.215.14/hook", "must use https"),
    ("https://user:pw@93.184.215.14/hook", "must not carry credentials"),
    ("https:///hook", "has no host"),
    ("https://93.184.215.14:99999/hook", "malformed"),
])
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

    target = _Target("https://hooks.example.com:8443/in?x=1", "hooks.example.com", ipaddress.ip_address("93.184.215.14"))
    url, headers, extensions = urls.pinned_request(target)
    assert url == "https://93.184.215.14:8443/in?x=1"
    assert headers == {"Host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
