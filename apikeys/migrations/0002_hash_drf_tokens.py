"""Turn DRF's tokens (rest_framework.authtoken, no longer installed) into API keys: store each
key's SHA-256, so clients keep sending the key they have, then drop the table of plain keys.

On a fresh database there is no token table and nothing to do. Irreversible: the plain keys
are gone by design.
"""

import hashlib

from django.conf import settings
from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder

TOKEN_TABLE = "authtoken_token"
VIEWER_GROUP = "viewer"
MIGRATED_NAME = "migrated DRF token"


def role_scopes(user, in_viewer_group: bool) -> dict[str, bool]:
    """The scopes the user's role allows (as apikeys.selectors.api_key_role_scopes): the
    token could do all of that before."""
    staff = user.is_staff
    return {
        "scope_ingest": staff or not in_viewer_group,
        "scope_read": True,
        "scope_operate": staff,
    }


def hash_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if TOKEN_TABLE not in connection.introspection.table_names():
        return
    table = schema_editor.quote_name(TOKEN_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {table}")
        tokens = cursor.fetchall()
    ApiKey = apps.get_model("apikeys", "ApiKey")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    user_ids = {user_id for _, user_id, _ in tokens}
    users = User.objects.in_bulk(user_ids)
    viewers = set(
        User.objects.filter(pk__in=user_ids, groups__name=VIEWER_GROUP).values_list("pk", flat=True)
    )
    ApiKey.objects.bulk_create(
        ApiKey(
            user_id=user_id,
            name=MIGRATED_NAME,
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            prefix=key[:8],
            created_at=created,
            **role_scopes(users[user_id], user_id in viewers),
        )
        for key, user_id, created in tokens
    )
    schema_editor.execute(f"DROP TABLE {table}")
    # As if authtoken had never been installed: adding it back would create its table again.
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("apikeys", "0001_api_key"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(hash_drf_tokens)]
