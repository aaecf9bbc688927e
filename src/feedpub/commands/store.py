"""store migrate: copy the whole store to another database (SQLite to PostgreSQL)."""

from __future__ import annotations

import click

from feedpub.commands.common import App, handle_errors, pass_app


@click.group("store")
def store_group() -> None:
    """The store itself: move it to another database."""


@store_group.command("migrate")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="SQLAlchemy URL of a new, empty database, e.g. postgresql+psycopg://feedpub@db/feedpub.",
)
@pass_app
@handle_errors
def migrate_cmd(app: App, target: str) -> None:
    """Copy every article, subscriber, edition and ledger row into the database at URL
    (one transaction: all or nothing). Stop the daemon first; then point [store] url at
    URL. The source is left as it was."""
    from feedpub.locks import lock_for
    from feedpub.storecopy import copy_store

    config, store = app.config, app.store
    if not store.is_sqlite:  # daemons on PostgreSQL hold a lease, not the daemon lock
        from feedpub import leases
        from feedpub.errors import LockedError

        with store.read() as conn:
            lead = leases.current(conn, "leader")
        if lead is not None and lead.held(app.now()):
            raise LockedError(
                f"feedpub run is running on this store (leader {lead.holder} on {lead.host}, "
                f"pid {lead.pid}); stop every instance first"
            )
    # Hold the daemon's and the build's locks: nothing writes the source meanwhile.
    with (
        lock_for(config.store_url, "daemon", store.engine),
        lock_for(config.store_url, "build", store.engine, wait=60),
    ):
        report = copy_store(store, target)
    for name, n in report.rows.items():
        app.console.print(f"  {name:<18} {n:>9,} rows", markup=False, soft_wrap=True)
    app.console.print(
        f"copied {report.total:,} rows to {target}; now set [store] url to it "
        "(a password belongs in PGPASSWORD or ~/.pgpass, not in config.toml)",
        markup=False,
        soft_wrap=True,
    )


COMMANDS = [store_group]
