-- Step mail.templates: v2.0 mail templates (runbook: "Mail templates"); existing ones are left as they are.
-- name: names
SELECT name FROM mail_templates

-- name: insert
INSERT INTO mail_templates (name, label, `from`, reply_to, return_path, subject, text_plain,
                            created_at, updated_at)
VALUES (%(name)s, %(label)s, %(from)s, %(reply_to)s, %(return_path)s, %(subject)s, %(text_plain)s,
        UTC_TIMESTAMP(), UTC_TIMESTAMP())
