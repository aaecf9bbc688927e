"""The scheduler daemon (``feedpub run``): pure job/slot decisions in ``jobs``, the
APScheduler wrapper in ``engine``, the daemon itself in ``daemon``."""
