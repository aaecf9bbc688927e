"""Feeds mirrored to S3-compatible object storage (``[output] url = "s3://…"``), against
moto's standalone S3 server on 127.0.0.1 (a real HTTP server speaking the S3 API; no cloud):
right Content-Type, Cache-Control and Content-Encoding of the precompressed copies; only
changed objects uploaded; the index uploaded after what it links to; removed feeds deleted;
the newsletter archive uploaded by the instance that finished the edition; bad URLs refused."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from feedpub.collect import collect
from feedpub.config_s3 import split_s3_url
from feedpub.errors import ConfigError
from feedpub.feeds import build_feeds
from feedpub.feeds import s3 as feeds_s3
from tests.conftest import Newsroom

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BUCKET = "newsroom-feeds"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3

    monkeypatch.setenv("FEEDPUB_TEST_S3_KEY", "testing")
    monkeypatch.setenv("FEEDPUB_TEST_S3_SECRET", "testing")
    cl = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    cl.create_bucket(Bucket=BUCKET)
    feeds_s3._last_pass.clear()
    yield cl
    for page in cl.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            cl.delete_object(Bucket=BUCKET, Key=obj["Key"])
    cl.delete_bucket(Bucket=BUCKET)


def _configure(newsroom: Newsroom, endpoint: str, extra: str = "") -> None:
    newsroom.set_config(
        f"""
[output.s3]
endpoint_url = "{endpoint}"
region = "us-east-1"
access_key_env = "FEEDPUB_TEST_S3_KEY"
secret_key_env = "FEEDPUB_TEST_S3_SECRET"
{extra}
"""
    )
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('dir = "feeds"', 'dir = "feeds"\nurl = "s3://newsroom-feeds/site/"'),
        encoding="utf-8",
    )


def _stories(newsroom: Newsroom, n: int) -> None:
    for i in range(n):
        newsroom.write(
            f"s{i}.md",
            f"---\ntitle: Story {i}\ndate: 2026-11-2{i % 5} 09:00\nbeat: world\n---\n"
            + ("A paragraph of the story. " * 60)
            + "\n",
        )


def _keys(cl: Any) -> dict[str, str]:
    out = {}
    for page in cl.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["ETag"]
    return out


def _build(newsroom: Newsroom, **kw: Any) -> Any:
    cfg = newsroom.config()
    store = newsroom.store()
    try:
        collect(cfg, store, now=NOW)
        return build_feeds(cfg, store, now=NOW, ping=False, **kw)
    finally:
        store.close()


def test_build_uploads_every_file_with_its_headers(
    newsroom: Newsroom, endpoint: str, bucket: Any
) -> None:
    _configure(newsroom, endpoint)
    _stories(newsroom, 4)
    report = _build(newsroom)
    keys = _keys(bucket)
    local = sorted(
        p.relative_to(newsroom.root / "feeds").as_posix()
        for p in (newsroom.root / "feeds").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    assert {k.removeprefix("site/") for k in keys if not k.endswith(".gz")} == set(local)
    assert report.uploaded == len(keys)
    rss = bucket.get_object(Bucket=BUCKET, Key="site/rss.xml")
    assert rss["ContentType"] == "application/rss+xml; charset=utf-8"
    assert rss["CacheControl"] == "public, max-age=300"
    assert "ContentEncoding" not in rss
    assert rss["Body"].read() == (newsroom.root / "feeds" / "rss.xml").read_bytes()
    atom = bucket.get_object(Bucket=BUCKET, Key="site/atom.xml")
    assert atom["ContentType"] == "application/atom+xml; charset=utf-8"
    jf = bucket.get_object(Bucket=BUCKET, Key="site/feed.json")
    assert jf["ContentType"] == "application/feed+json; charset=utf-8"
    json.loads(jf["Body"].read())
    index = bucket.get_object(Bucket=BUCKET, Key="site/index.html")
    assert index["ContentType"] == "text/html; charset=utf-8"
    # The precompressed copy: same type, Content-Encoding gzip, the same bytes inside.
    gz = bucket.get_object(Bucket=BUCKET, Key="site/rss.xml.gz")
    assert gz["ContentType"] == "application/rss+xml; charset=utf-8"
    assert gz["ContentEncoding"] == "gzip"
    assert gzip.decompress(gz["Body"].read()) == (newsroom.root / "feeds" / "rss.xml").read_bytes()


def test_only_changed_objects_are_uploaded_again(
    newsroom: Newsroom, endpoint: str, bucket: Any
) -> None:
    _configure(newsroom, endpoint)
    _stories(newsroom, 4)
    _build(newsroom)
    before = _keys(bucket)
    # A forced rebuild rewrites byte-identical files: nothing goes up again.
    feeds_s3._last_pass.clear()
    again = _build(newsroom, force=True)
    assert again.uploaded == 0
    assert _keys(bucket) == before
    # One new story in "world": the site and world feeds change, technology's do not.
    newsroom.write(
        "new.md", "---\ntitle: A new story\ndate: 2026-11-25 10:00\nbeat: world\n---\nNew.\n"
    )
    report = _build(newsroom)
    changed = {k for k, etag in _keys(bucket).items() if before.get(k) != etag}
    assert report.uploaded == len(changed) > 0
    assert "site/rss.xml" in changed and "site/beats/world/rss.xml" in changed
    assert not any(k.startswith("site/beats/technology/") for k in changed)


def test_the_index_goes_up_after_what_it_links_to(
    newsroom: Newsroom, endpoint: str, bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(newsroom, endpoint, "precompress = false")
    _stories(newsroom, 2)
    order: list[str] = []
    real = feeds_s3._put

    def spy(cl: Any, bucket_: str, key: str, *a: Any) -> None:
        order.append(key.removeprefix("site/"))
        real(cl, bucket_, key, *a)

    monkeypatch.setattr(feeds_s3, "_put", spy)
    _build(newsroom)
    assert order[-2:] == sorted(order[-2:]) and set(order[-2:]) == {"index.html", "feeds.opml"}
    for name in ("rss.xml", "beats/world/atom.xml"):
        assert order.index(name) < order.index("index.html")


def test_a_feed_removed_by_the_build_is_deleted_from_the_bucket(
    newsroom: Newsroom, endpoint: str, bucket: Any
) -> None:
    _configure(newsroom, endpoint)
    _stories(newsroom, 2)
    _build(newsroom)
    assert "site/beats/technology/rss.xml" in _keys(bucket)
    text = newsroom.config_path.read_text(encoding="utf-8")
    start = text.index('[[beats]]\nslug = "technology"')
    end = text.index("[[beats]]", start + 5)
    newsroom.config_path.write_text(text[:start] + text[end:], encoding="utf-8")
    report = _build(newsroom)
    assert report.removed
    keys = _keys(bucket)
    assert not any(k.startswith("site/beats/technology/") for k in keys)
    assert "site/rss.xml" in keys


def test_bad_output_urls_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="only s3:// URLs"):
        split_s3_url("https://bucket.example/feeds/")
    with pytest.raises(ValueError, match="not a valid S3 bucket name"):
        split_s3_url("s3://Bad_Bucket/feeds/")
    assert split_s3_url("s3://my-bucket/a/b") == ("my-bucket", "a/b/")
    assert split_s3_url("s3://my-bucket") == ("my-bucket", "")


def test_a_missing_credential_variable_is_a_config_error(
    newsroom: Newsroom, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(newsroom, endpoint)
    monkeypatch.setenv("FEEDPUB_TEST_S3_KEY", "testing")
    monkeypatch.delenv("FEEDPUB_TEST_S3_SECRET", raising=False)
    with pytest.raises(ConfigError, match="FEEDPUB_TEST_S3_SECRET"):
        feeds_s3.client(newsroom.config())


def test_a_non_s3_output_url_is_a_config_error_naming_the_key(newsroom: Newsroom) -> None:
    from feedpub.config import load_config

    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text.replace('dir = "feeds"', 'dir = "feeds"\nurl = "ftp://host/feeds/"'), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"output\.url.*only s3:// URLs"):
        load_config(newsroom.config_path)


def test_the_instance_that_finishes_an_edition_uploads_its_archive(
    newsroom: Newsroom, endpoint: str, bucket: Any
) -> None:
    from feedpub.digest import send_newsletter
    from feedpub.digest import subscribers as subs

    _configure(newsroom, endpoint)
    newsroom.write("a.md", "---\ntitle: Kyiv story\ndate: 2026-11-26 10:00\nbeat: world\n---\nB.\n")
    cfg = newsroom.config()
    store = newsroom.store()
    try:
        collect(cfg, store, now=NOW)
        with store.begin() as conn:
            subs.add(cfg, conn, "reader@example.com", newsletters=["daily"], now=NOW)
        report = send_newsletter(cfg, store, "daily", now=NOW)
    finally:
        store.close()
    assert report.status == "sent" and report.archive is not None
    keys = _keys(bucket)
    page = report.archive.relative_to(newsroom.root / "feeds").as_posix()
    for rel in (page, "newsletters/daily/index.html", "newsletters/daily/atom.xml"):
        assert "site/" + rel in keys
    got = bucket.get_object(Bucket=BUCKET, Key="site/" + page)
    assert got["CacheControl"] == "public, max-age=86400"  # an edition page never changes
