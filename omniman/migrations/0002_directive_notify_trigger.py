"""On PostgreSQL, a trigger announces each due directive with NOTIFY (delivered when the enqueuing
transaction commits), so ``process_directives --watch`` wakes at once — at no extra round trip."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION omniman_directive_notify() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'queued' AND NEW.available_at <= clock_timestamp() THEN
        PERFORM pg_notify('omniman_directives', NEW.topic);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS omniman_directive_notify ON omniman_directive;
CREATE TRIGGER omniman_directive_notify AFTER INSERT ON omniman_directive
    FOR EACH ROW EXECUTE FUNCTION omniman_directive_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS omniman_directive_notify ON omniman_directive;
DROP FUNCTION IF EXISTS omniman_directive_notify();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("omniman", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
