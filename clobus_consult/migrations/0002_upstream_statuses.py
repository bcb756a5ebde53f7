"""Remember the status each upstream last reported, so a status changes only when that upstream's does:
a 1C re-read or an unrelated Chatwoot update must not undo what the other upstream did."""
from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("consultation", "chatwoot_status", CharField(null=True, max_length=16)),
        migrator.add_column("consultation", "onec_status", CharField(null=True, max_length=16)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("consultation", "chatwoot_status"),
        migrator.drop_column("consultation", "onec_status"),
    )
