-- Runbook part 6: the user ids of Cyclades and Pithos against Astakos's users (shared research
-- synnefo.md §1, §2: Cyclades reads every row, deleted ones too; a Pithos account is a node
-- with parent 0).
-- name: cyclades_ids
SELECT userid AS id FROM db_virtualmachine
UNION SELECT userid FROM db_network WHERE userid IS NOT NULL
UNION SELECT "user" FROM userdata_publickeypair
ORDER BY 1

-- name: astakos_uuids
SELECT lower(u.email) AS username, a.uuid
FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id
WHERE a.uuid IS NOT NULL

-- name: pithos_accounts
SELECT n.path, p.value AS quota
FROM nodes n LEFT JOIN policy p ON p.node = n.node AND p.key = 'quota'
WHERE n.parent = 0 AND n.node != 0
ORDER BY 1

-- name: set_account_quota
INSERT INTO policy (node, key, value)
SELECT node, 'quota', %(quota)s FROM nodes WHERE parent = 0 AND node != 0 AND path = %(account)s
ON CONFLICT (node, key) DO UPDATE SET value = EXCLUDED.value

-- name: unmerged_objects
-- The objects of account src with no object of the same container and name under dest: 0
-- once a merge of src into dest is done (a retry then only deletes src).
SELECT count(*) FROM nodes o
JOIN nodes c ON c.node = o.parent
JOIN nodes a ON a.node = c.parent
WHERE a.parent = 0 AND a.node != 0 AND a.path = %(src)s
  AND NOT EXISTS (SELECT 1 FROM nodes d WHERE d.path = %(dest)s || substr(o.path, length(%(src)s) + 1))

-- name: lend_public_url
-- 0.13's merge reads public.url, which alembic 27381099d477 (6.4) adds: lent to the merges
-- (6.2) as that revision adds it, and returned after them.
ALTER TABLE public ADD COLUMN IF NOT EXISTS url varchar(2048) NULL

-- name: return_public_url
-- Dropped unless alembic is at the revision that adds it (then it is the revision's own).
-- (PL/pgSQL plans a statement when it first runs it: alembic_version is read only if it exists.)
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM alembic_version WHERE version_num = '27381099d477') THEN
            RETURN;
        END IF;
    END IF;
    ALTER TABLE public DROP COLUMN IF EXISTS url;
END $$

-- name: public_url_exists
SELECT EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = 'public' AND column_name = 'url')
