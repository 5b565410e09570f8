-- Step report.daily: the daily report's recipients, whether today's was sent, and its figures
-- as `vpsadmin:mail_daily_report` counts them (models/transaction_chains/mail/daily_report.rb:
-- the day before %(t)s, the time the report was made, while its own chain %(chain_id)s was
-- being built: that chain counts among all chains, its mail not yet as done), plus the day's
-- payments, which the 2.0 report leaves out.

-- name: recipients
SELECT mt.id AS template_id, r.`to`, r.cc, r.bcc FROM mail_templates mt
LEFT JOIN mail_template_recipients mtr ON mtr.mail_template_id = mt.id
LEFT JOIN mail_recipients r ON r.id = mtr.mail_recipient_id
WHERE mt.name = 'daily_report'

-- name: sent_since
-- Reports logged since 00:00 UTC of the run's day: that day's report is out.
SELECT l.id, l.created_at, l.`to`, t.transaction_chain_id AS chain_id
FROM mail_logs l INNER JOIN mail_templates mt ON mt.id = l.mail_template_id
LEFT JOIN transactions t ON t.t_id = l.transaction_id
WHERE mt.name = 'daily_report' AND l.created_at >= %(day)s
ORDER BY l.id

-- name: now
SELECT UTC_TIMESTAMP() AS t

-- name: figures
SELECT
  (SELECT COUNT(*) FROM members WHERE object_state = 0
     AND DATE_ADD(created_at, INTERVAL 1 DAY) >= %(t)s) AS users_new,
  (SELECT COUNT(*) FROM members m INNER JOIN object_states s ON s.class_name = 'User' AND m.m_id = s.row_id
     WHERE m.object_state = 1 AND s.state = 1 AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %(t)s) AS users_suspended,
  (SELECT COUNT(*) FROM members m INNER JOIN object_states s ON s.class_name = 'User' AND m.m_id = s.row_id
     WHERE m.object_state = 2 AND s.state = 2 AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %(t)s) AS users_soft_deleted,
  (SELECT COUNT(*) FROM members m INNER JOIN object_states s ON s.class_name = 'User' AND m.m_id = s.row_id
     WHERE m.object_state = 3 AND s.state = 3 AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %(t)s) AS users_hard_deleted,
  (SELECT COUNT(*) FROM vps WHERE object_state IN (0, 1)
     AND DATE_ADD(created_at, INTERVAL 1 DAY) >= %(t)s) AS vps_new,
  (SELECT COUNT(*) FROM vps v INNER JOIN object_states s ON s.class_name = 'Vps' AND v.vps_id = s.row_id
     WHERE v.object_state = 1 AND s.state = 1 AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %(t)s) AS vps_suspended,
  (SELECT COUNT(*) FROM vps v INNER JOIN object_states s ON s.class_name = 'Vps' AND v.vps_id = s.row_id
     WHERE v.object_state = 2 AND s.state = 2 AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %(t)s) AS vps_soft_deleted,
  (SELECT COUNT(*) FROM vps v INNER JOIN object_states s ON s.class_name = 'Vps' AND v.vps_id = s.row_id
     WHERE v.object_state = 3 AND s.state = 3 AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %(t)s) AS vps_hard_deleted,
  (SELECT COUNT(*) FROM members_payments WHERE `timestamp` >= %(since_unix)s) AS payments,
  (SELECT COUNT(*) FROM transaction_chains WHERE DATE_ADD(created_at, INTERVAL 1 DAY) >= %(t)s) AS chains_total,
  (SELECT COUNT(*) FROM transaction_chains WHERE state = 2 AND id <> %(chain_id)s
     AND DATE_ADD(created_at, INTERVAL 1 DAY) >= %(t)s) AS chains_done,
  (SELECT COUNT(*) FROM transaction_chains WHERE state >= 4 AND id <> %(chain_id)s
     AND DATE_ADD(created_at, INTERVAL 1 DAY) >= %(t)s) AS chains_failed,
  (SELECT COUNT(*) FROM transactions WHERE t_done = 1 AND transaction_chain_id <> %(chain_id)s
     AND DATE_ADD(created_at, INTERVAL 1 DAY) > %(t)s) AS transactions_done,
  (SELECT COUNT(*) FROM transactions WHERE t_done = 1 AND t_success = 0 AND transaction_chain_id <> %(chain_id)s
     AND DATE_ADD(created_at, INTERVAL 1 DAY) > %(t)s) AS transactions_failed
