-- Steps lifetimes.mail-users and lifetimes.mail-vps: what `rake vpsadmin:lifetimes:mail`
-- selects (expiration_date < now + DAYS, in STATES; default scopes hide hard_delete) and who
-- owns it; only owners with m_mailer_enable get a mail (ExpirationWarning).

-- name: selection_User
SELECT m.m_id AS id, m.m_nick AS label, m.object_state, m.expiration_date, m.m_nick AS owner,
       m.m_mailer_enable AS mailer
FROM members m
WHERE m.expiration_date < UTC_TIMESTAMP() + INTERVAL %(days)s DAY AND m.object_state <> 3
  AND (%(any_state)s OR m.object_state IN %(states)s)
ORDER BY m.m_id

-- name: selection_Vps
SELECT v.vps_id AS id, v.vps_hostname AS label, v.object_state, v.expiration_date, m.m_nick AS owner,
       m.m_mailer_enable AS mailer
FROM vps v INNER JOIN members m ON m.m_id = v.m_id
WHERE v.expiration_date < UTC_TIMESTAMP() + INTERVAL %(days)s DAY AND v.object_state <> 3
  AND (%(any_state)s OR v.object_state IN %(states)s)
ORDER BY v.vps_id

-- name: templates
SELECT name FROM mail_templates WHERE name LIKE %(prefix)s

-- name: mailed_since
-- The expiration mails of one model logged since 00:00 UTC of the run's day: that day's
-- mailing is done (runs follow each other: max_active_runs 1).
SELECT l.id, l.user_id, l.created_at, t.transaction_chain_id AS chain_id
FROM mail_logs l INNER JOIN mail_templates mt ON mt.id = l.mail_template_id
LEFT JOIN transactions t ON t.t_id = l.transaction_id
WHERE mt.name LIKE %(prefix)s AND l.created_at >= %(day)s
ORDER BY l.id
