"""``[output] url`` (feeds to S3-compatible object storage) and ``[output.s3]``, kept apart
from ``feedpub.config`` so that module stays readable; ``OutputConfig`` includes them.
docs/deploy.md ("Feeds in object storage")."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# S3 bucket naming rules (3-63 chars, lower case, digits, dots, hyphens)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3OutputConfig(BaseModel):
    """How the output folder is mirrored to the bucket of ``[output] url``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    endpoint_url: str | None = None  # S3-compatible service (MinIO, R2...); default AWS
    region: str | None = None
    # Credentials: these environment variables when named, else boto3's usual chain
    # (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, ~/.aws, an instance role).
    access_key_env: str | None = None
    secret_key_env: str | None = None
    cache_control: str = "public, max-age=300"  # feeds, index pages, OPML
    archive_cache_control: str = "public, max-age=86400"  # */archive/* and edition pages
    precompress: bool = True  # also upload NAME.gz (Content-Encoding: gzip) of text files
    precompress_min: Annotated[int, Field(ge=0)] = 1024  # bytes; smaller files gain nothing


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` -> (bucket, "prefix/"); ValueError naming what is wrong."""
    if not url.startswith("s3://"):
        raise ValueError(
            f"{url!r}: only s3:// URLs are supported, e.g. 's3://my-bucket/feeds/' "
            "(a folder is [output] dir)"
        )
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"{url!r}: {bucket!r} is not a valid S3 bucket name")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def check_output_url(v: str) -> str:
    bucket, prefix = split_s3_url(v)
    return f"s3://{bucket}/{prefix}"


S3Url = Annotated[str, AfterValidator(check_output_url)]  # normalised: s3://bucket/prefix/
