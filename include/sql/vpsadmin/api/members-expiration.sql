-- Step api.members-expiration, optional: expiration_date = paid_until. Only where no expiration is set yet,
-- so a later run does not undo what the lifetimes jobs have changed since.
-- name: probe
SELECT COUNT(*) AS to_change FROM members
WHERE expiration_date IS NULL AND paid_until IS NOT NULL

-- name: sample
SELECT m_id, m_nick, paid_until FROM members
WHERE expiration_date IS NULL AND paid_until IS NOT NULL ORDER BY m_id LIMIT 10

-- name: apply
UPDATE members SET expiration_date = paid_until
WHERE expiration_date IS NULL AND paid_until IS NOT NULL
