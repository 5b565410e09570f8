-- Step api.vps-confirmed: migrated VPSes are still confirm_create (0); the runbook confirms them all. Rows in
-- confirm_destroy (2) are left alone (there are none right after the migration).
-- name: probe
SELECT COUNT(*) AS to_change FROM vps WHERE confirmed = 0

-- name: apply
UPDATE vps SET confirmed = 1 WHERE confirmed = 0
