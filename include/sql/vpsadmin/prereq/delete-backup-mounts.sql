-- Step prereq.delete-backup-mounts: the runbook's PHP script selects the mounts of backup
-- exports; nas_mount_delete() then reads each mount with its export, root, servers and the
-- VPS's latest status (vps_load::info), and regenerates the VPS's remaining mounts. One read
-- gives both: the backup mounts and every other non-template mount of the same VPSes.
-- `src` is resolved as nas_mount_params() does.
-- name: mounts
SELECT m.id, m.vps_id, m.dst, m.mount_opts, m.umount_opts, m.mode, m.`default`,
       m.cmd_premount, m.cmd_postmount, m.cmd_preumount, m.cmd_postumount,
       e.data_type = 'backup' AS is_backup, v.vps_server,
       vs.server_id IS NOT NULL AS node_exists, COALESCE(st.vps_up, 0) AS vps_up,
       CASE WHEN m.storage_export_id THEN CONCAT(es.server_ip4, ':', r.root_path, '/', e.path)
            WHEN m.server_id THEN CONCAT(ms.server_ip4, ':', m.src)
            ELSE m.src END AS src
FROM vps_mount m
LEFT JOIN storage_export e ON m.storage_export_id = e.id
LEFT JOIN storage_root r ON r.id = e.root_id
LEFT JOIN servers es ON es.server_id = r.node_id
LEFT JOIN servers ms ON ms.server_id = m.server_id
LEFT JOIN vps v ON v.vps_id = m.vps_id
LEFT JOIN servers vs ON vs.server_id = v.vps_server
LEFT JOIN vps_status st ON st.vps_id = m.vps_id
WHERE e.data_type = 'backup'
   OR (m.`default` = 0 AND m.vps_id IN (
        SELECT bm.vps_id FROM vps_mount bm INNER JOIN storage_export be ON bm.storage_export_id = be.id
        WHERE be.data_type = 'backup'))
ORDER BY m.vps_id, m.id

-- name: queue_transaction
-- add_transaction() of v1.22 (t_m_id 0: the script runs without a session member); skipped
-- when the same transaction is already queued, so a retry does not queue it twice.
INSERT INTO transactions (t_time, t_m_id, t_server, t_vps, t_type, t_depends_on, t_fallback,
                          t_urgent, t_priority, t_success, t_done, t_param)
SELECT UNIX_TIMESTAMP(), 0, %(t_server)s, %(t_vps)s, %(t_type)s, NULL, '{}', 0, 10, 0, 0, %(t_param)s
FROM (SELECT 1 AS one) AS x
WHERE NOT EXISTS (SELECT 1 FROM transactions
                  WHERE t_done = 0 AND t_server = %(t_server)s AND t_vps = %(t_vps)s
                    AND t_type = %(t_type)s AND t_param = %(t_param)s)

-- name: delete_mount
DELETE FROM vps_mount WHERE id = %(id)s
