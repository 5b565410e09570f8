-- Step s2.find-duplicates: every account of the three services, read whole (COPY) for the
-- pandas reconciliation (plugins/synnefo/duplicates.py). Astakos users with their activity
-- (0.12: no uuid yet), the Cyclades owners with how many VMs and networks each spelling
-- holds (deleted ones too: the Cyclades tools move them all), and the Pithos accounts (the
-- top-level nodes). Times as epoch seconds (read_accounts_csv turns them into UTC).
-- name: astakos
SELECT u.id, u.email, u.is_active, extract(epoch FROM u.last_login)::bigint AS last_login,
       extract(epoch FROM u.date_joined)::bigint AS date_joined
FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id

-- name: vms
SELECT userid, count(*) AS count FROM db_virtualmachine GROUP BY userid

-- name: networks
SELECT userid, count(*) AS count FROM db_network WHERE userid IS NOT NULL GROUP BY userid

-- name: pithos
SELECT path AS account FROM nodes WHERE parent = 0 AND node != 0
