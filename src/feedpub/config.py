"""Configuration: ``config.toml`` read with tomllib, validated into frozen objects.

Every error names the key path (``beats[2].slug``) and what is allowed; the CLI
exits with status 2. Relative paths resolve against the config file's folder.
Secrets never live in the file: it names environment variables that hold them.
"""

from __future__ import annotations

import email.utils
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from feedpub.config_checks import check_config
from feedpub.config_delivery import AtLeastASecond as AtLeastASecond
from feedpub.config_delivery import DeliveryConfig as DeliveryConfig
from feedpub.config_delivery import DkimConfig as DkimConfig
from feedpub.config_delivery import SmtpConfig as SmtpConfig
from feedpub.config_delivery import SmtpServerConfig as SmtpServerConfig
from feedpub.config_lifecycle import BouncesConfig, SignupConfig
from feedpub.config_s3 import S3OutputConfig, S3Url
from feedpub.errors import ConfigError

# BCP 47, simplified: language[-script][-region][-variant...] ("en", "en-US", "uk", "zh-Hant-TW").
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as 'Europe/London'"
        ) from None
    return value


def _check_absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute http(s) URL, e.g. 'https://example.com/'")
    return value


def _check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(f"{value!r} is not a slug: use lowercase letters, digits and hyphens")
    return value


class SiteConfig(_Model):
    title: str
    base_url: str
    language: str = "en"
    timezone: str = "UTC"
    description: str = ""
    websub_hub: str | None = None
    icon: str | None = None  # URL (absolute or relative to base_url)
    logo: str | None = None
    article_path: str = "articles/{slug}/"  # pattern for canonical URLs without front matter url
    default_beat: str | None = None
    author_email: str | None = None  # shown when an author has none (Atom needs a name only)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        v = _check_absolute_url(v)
        return v if v.endswith("/") else v + "/"

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, v: str | None) -> str | None:
        return None if v is None else _check_absolute_url(v)

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if not _BCP47.match(v):
            raise ValueError(
                f"{v!r} is not a BCP 47 language tag: write 'en' or 'en-US' (not 'en_US')"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_timezone(v)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class StoreConfig(_Model):
    url: str = "sqlite:///feedpub.db"
    # SQLite: "full" syncs each commit (the ledger survives a power cut); docs/smtp.md
    sqlite_synchronous: Literal["full", "normal"] = "full"


class OutputConfig(_Model):
    dir: Path = Path("feeds")
    items_per_feed: Annotated[int, Field(ge=1, le=10_000)] = 50
    archive_page_size: Annotated[int, Field(ge=1, le=10_000)] | None = (
        None  # default: items_per_feed
    )
    # RFC 5005 archive pages holding every article; false: each feed is its newest
    # items_per_feed only (no archive pages; those of earlier builds are removed).
    archives: bool = True
    beat_path: str = "beats/{slug}/"
    author_path: str = "authors/{slug}/"
    templates_dir: Path | None = None  # user templates that override ours
    # Feeds: where the output folder is served (self links); default: site.base_url.
    base_url: str | None = None
    # Feeds: "auto" = feedgen for current feeds, the streaming writer for archive pages;
    # "feedgen" / "stream" force one writer everywhere (both give the same parsed feed).
    writer: Literal["auto", "feedgen", "stream"] = "auto"
    # Mirror the output folder to object storage: "s3://bucket/prefix/" (the `s3` extra).
    url: S3Url | None = None
    s3: S3OutputConfig = S3OutputConfig()
    # A feed file over this many bytes carries summaries for its oldest items (docs/content.md).
    max_feed_bytes: Annotated[int, Field(ge=10_000)] = 1_000_000

    @field_validator("base_url")
    @classmethod
    def _out_base_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = _check_absolute_url(v)
        return v if v.endswith("/") else v + "/"


class FolderSourceConfig(_Model):
    type: Literal["folder"]
    path: Path
    name: str | None = None
    beat: str | None = None
    author: str | None = None
    # A bigger file is rejected before it is read (docs/content.md "Limits").
    max_file_bytes: Annotated[int, Field(ge=1024)] = 2_000_000


class FeedSourceConfig(_Model):
    type: Literal["feed"]
    url: str
    name: str | None = None
    beat: str | None = None
    author: str | None = None
    retract_missing: bool = False  # entries gone from the upstream feed are retracted
    timeout: Annotated[float, Field(gt=0, le=300)] = 20.0
    max_bytes: Annotated[int, Field(ge=1024)] = 10 * 1024 * 1024
    map_tags_to_beats: dict[str, str] = Field(default_factory=dict)  # upstream category -> beat
    # Excerpt-only feeds (Wix): fetch each new or changed entry's page for the full text.
    full_text: bool = False
    full_text_per_run: Annotated[int, Field(ge=1, le=1000)] = 50

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_absolute_url(v)


class PagesSourceConfig(_Model):
    type: Literal["pages"]
    sitemap: str | None = None
    urls: tuple[str, ...] = ()
    name: str | None = None
    beat: str | None = None
    author: str | None = None
    timeout: Annotated[float, Field(gt=0, le=300)] = 20.0
    max_bytes: Annotated[int, Field(ge=1024)] = 5 * 1024 * 1024
    concurrency_per_host: Annotated[int, Field(ge=1, le=16)] = 2
    requests_per_second: Annotated[float, Field(gt=0)] = 4.0
    url_pattern: str | None = None  # regex: only sitemap URLs matching it are articles
    max_pages_per_run: Annotated[int, Field(ge=1, le=10_000)] = 100  # the rest wait a run
    retract_missing: bool = False  # pages gone from the sitemap are retracted

    @field_validator("sitemap")
    @classmethod
    def _sitemap(cls, v: str | None) -> str | None:
        return None if v is None else _check_absolute_url(v)

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_absolute_url(u) for u in v)

    @field_validator("url_pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(
                    f"url_pattern {v!r} is not a valid regular expression: {e}"
                ) from None
        return v

    @model_validator(mode="after")
    def _one_of(self) -> PagesSourceConfig:
        if not self.sitemap and not self.urls:
            raise ValueError("a pages source needs 'sitemap' or 'urls'")
        return self


SourceConfig = Annotated[
    FolderSourceConfig | FeedSourceConfig | PagesSourceConfig, Field(discriminator="type")
]


class BeatConfig(_Model):
    slug: str
    title: str
    description: str = ""
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    # The newsroom's own page for the beat (its CMS section page): every link to the beat
    # goes there and the build writes no beats/{slug}/index.html. Default: that page.
    url: str | None = None

    _slug = field_validator("slug")(classmethod(lambda cls, v: _check_slug(v)))
    _url = field_validator("url")(
        classmethod(lambda cls, v: None if v is None else _check_absolute_url(v))
    )


class AuthorConfig(_Model):
    name: str
    slug: str | None = None
    email: str | None = None
    uri: str | None = None  # the person's own address (Atom author uri)
    bio: str = ""
    beat: str | None = None
    url: str | None = None  # the CMS's author page, instead of authors/{slug}/index.html

    _url = field_validator("url")(
        classmethod(lambda cls, v: None if v is None else _check_absolute_url(v))
    )


class NewsletterConfig(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    slug: str
    title: str
    from_: str = Field(alias="from")
    reply_to: str | None = None
    schedule: str = "0 7 * * *"
    timezone: str = "UTC"
    beats: tuple[str, ...] | None = None  # None: all beats
    subject: str = "{{ newsletter.title }} — {{ edition.date_label }}"
    description: str = ""
    lookback: timedelta = timedelta(days=1)  # first edition: how far back
    skip_when_empty: bool = True
    max_articles_per_beat: Annotated[int, Field(ge=1, le=200)] = 10
    postal_address: str = ""
    misfire_grace: timedelta | None = None  # default: [schedule] misfire_grace

    _slug = field_validator("slug")(classmethod(lambda cls, v: _check_slug(v)))

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_timezone(v)

    @field_validator("from_", "reply_to")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        """One mailbox, 'Name <addr@domain>' or 'addr@domain' (RFC 5322 §3.4)."""
        if v is None:
            return None
        if any(c in v for c in "\r\n\x00"):
            raise ValueError("must be one line")
        found = email.utils.getaddresses([v])
        if len(found) != 1 or "@" not in found[0][1]:
            raise ValueError(
                f"{v!r} is not one address: write 'Name <news@example.com>' and put a "
                "display name containing commas in double quotes"
            )
        return v

    @field_validator("title", "subject", "postal_address")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if any(c in v for c in "\r\n\x00"):
            raise ValueError("must be one line (it goes into mail headers)")
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"{v!r} is not a 5-field cron expression such as '0 7 * * *'")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SecretsConfig(_Model):
    token_key_env: str = "FEEDPUB_SECRET"


class ScheduleConfig(_Model):
    # Durations: seconds (int), "HH:MM:SS" or ISO 8601 ("PT5M", "PT6H").
    collect_every: timedelta = timedelta(minutes=5)  # collect + build tick of `feedpub run`
    misfire_grace: timedelta = timedelta(hours=6)  # a missed newsletter slot younger is sent
    shutdown_timeout: timedelta = timedelta(seconds=60)  # SIGTERM: wait this long for the job
    keep_runs: timedelta = timedelta(days=30)  # the daemon prunes older collect/build runs
    # The daemon watches folder sources for file events and leaves unchanged ones out of a
    # tick; it still scans each at least this often (events don't cross network mounts).
    watch_folders: bool = True
    rescan_every: timedelta = timedelta(minutes=30)
    # several `feedpub run` on PostgreSQL: a dead leader is replaced within ~1⅓ lease
    leader_lease: timedelta = timedelta(seconds=15)

    @field_validator("collect_every", "shutdown_timeout", "leader_lease")
    @classmethod
    def _at_least_a_second(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError("must be at least 1 second")
        return v

    @field_validator("misfire_grace", "keep_runs")
    @classmethod
    def _not_negative(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError("must not be negative")
        return v


class WebConfig(_Model):
    """``feedpub serve`` (waitress; docs/web.md)."""

    threads: Annotated[int, Field(ge=1, le=256)] = 8  # worker threads running the app
    connection_limit: Annotated[int, Field(ge=1, le=100_000)] = 2000  # open connections at most
    backlog: Annotated[int, Field(ge=1, le=65535)] = 2048  # listen() queue
    idle_timeout: AtLeastASecond = timedelta(seconds=30)  # idle keep-alive connections close
    request_timeout: AtLeastASecond = timedelta(seconds=20)  # the whole request must arrive
    gzip: bool = True  # compress text files for clients that accept gzip


class LoggingConfig(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["logfmt", "json"] = "logfmt"


class Config(_Model):
    site: SiteConfig
    store: StoreConfig = StoreConfig()
    output: OutputConfig = OutputConfig()
    sources: tuple[SourceConfig, ...] = ()
    beats: tuple[BeatConfig, ...] = ()
    authors: tuple[AuthorConfig, ...] = ()
    newsletters: tuple[NewsletterConfig, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    secrets: SecretsConfig = SecretsConfig()
    signup: SignupConfig = SignupConfig()
    bounces: BouncesConfig = BouncesConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    logging: LoggingConfig = LoggingConfig()
    web: WebConfig = WebConfig()

    # Set by load_config: the folder relative paths resolve against.
    root: Path = Path(".")
    path: Path | None = None

    @model_validator(mode="after")
    def _references(self) -> Config:
        known = [b.slug for b in self.beats]
        seen: set[str] = set()
        for i, b in enumerate(self.beats):
            if b.slug in seen:
                raise ValueError(f"beats[{i}].slug: {b.slug!r} is defined twice")
            seen.add(b.slug)

        def check(where: str, slug: str | None) -> None:
            if slug is not None and slug not in seen:
                allowed = ", ".join(known) or "(no beats defined)"
                raise ValueError(f"{where}: beat {slug!r} is not defined; defined beats: {allowed}")

        check("site.default_beat", self.site.default_beat)
        for i, s in enumerate(self.sources):
            check(f"sources[{i}].beat", s.beat)
        for i, a in enumerate(self.authors):
            check(f"authors[{i}].beat", a.beat)
        names: set[str] = set()
        for i, n in enumerate(self.newsletters):
            if n.slug in names:
                raise ValueError(f"newsletters[{i}].slug: {n.slug!r} is defined twice")
            names.add(n.slug)
            for nb in n.beats or ():
                check(f"newsletters[{i}].beats", nb)
        if self.newsletters:
            unsub = self.delivery.unsubscribe_url or self.site.base_url
            if not unsub.startswith("https://"):
                raise ValueError(
                    "delivery.unsubscribe_url: one-click unsubscribe (RFC 8058) needs an https "
                    f"URL, and {unsub!r} is not; serve the site over https or set "
                    "delivery.unsubscribe_url to an https address"
                )
        src_names: set[str] = set()
        for i, s in enumerate(self.sources):
            name = source_name(s)
            if name in src_names:
                raise ValueError(f"sources[{i}]: two sources are named {name!r}; give one a 'name'")
            src_names.add(name)
        return self

    # ---- derived values -------------------------------------------------------------
    def resolve(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.root / p)

    @property
    def output_dir(self) -> Path:
        return self.resolve(self.output.dir)

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite path made absolute."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.resolve(Path(url[len(prefix) :])))
        return url

    def beat(self, slug: str) -> BeatConfig:
        for b in self.beats:
            if b.slug == slug:
                return b
        raise KeyError(slug)

    def newsletter(self, slug: str) -> NewsletterConfig:
        for n in self.newsletters:
            if n.slug == slug:
                return n
        raise KeyError(slug)

    def newsletter_beats(self, n: NewsletterConfig) -> tuple[str, ...]:
        return n.beats if n.beats is not None else tuple(b.slug for b in self.beats)

    def secret(self, env_name: str, *, key: str) -> str:
        """Read a secret from the environment variable the config names."""
        value = os.environ.get(env_name, "")
        if not value:
            raise ConfigError(
                f"environment variable {env_name} is empty or unset; set it to the secret "
                f"(named by {key})",
                path=self.path,
                key=key,
            )
        return value

    def token_key(self) -> bytes:
        return self.secret(self.secrets.token_key_env, key="secrets.token_key_env").encode()


def source_name(s: FolderSourceConfig | FeedSourceConfig | PagesSourceConfig) -> str:
    if s.name:
        return s.name
    if isinstance(s, FolderSourceConfig):
        return f"folder:{s.path.as_posix()}"
    if isinstance(s, FeedSourceConfig):
        return f"feed:{s.url}"
    return f"pages:{s.sitemap or s.urls[0]}"


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("folder", "feed", "pages", "function-after", "function-before"):
            continue  # discriminator / validator tags, not keys
        elif part.startswith("function-") or "[" in part:
            continue
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _format(e: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in e.errors():
        key = _loc(tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key: check the spelling (see README 'Configuration')"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"].startswith("time_delta"):
            msg = f'{msg}: write an ISO 8601 duration such as "PT5M", "PT6H" or "P1D", or seconds'
        out.append((key, msg))
    return out


def parse_config(
    data: dict[str, Any], *, path: Path | None = None, root: Path | None = None
) -> Config:
    """Validate a decoded TOML document. Raises ConfigError naming every bad key."""
    base = root if root is not None else (path.parent if path else Path("."))
    try:
        cfg = Config.model_validate({**data, "root": base.resolve(), "path": path})
    except ValidationError as e:
        problems = _format(e)
        text = "; ".join(m if k == "(top level)" else f"{k}: {m}" for k, m in problems)
        key = problems[0][0] if len(problems) == 1 and problems[0][0] != "(top level)" else None
        msg = text if key is None else problems[0][1]
        raise ConfigError(msg, path=path, key=key) from None
    for reserved in ("root", "path"):
        if reserved in data:
            raise ConfigError("unknown key: check the spelling", path=path, key=reserved)
    check_config(cfg, path)  # patterns and cron: errors at load, not at collect or send
    return cfg


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "file not found: pass --config PATH or create config.toml (see README)", path=path
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", path=path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", path=path) from None
    return parse_config(data, path=path)
