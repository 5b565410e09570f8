-- Runbook part 9: what the services hold (shared research synnefo.md §5: pithos-usage sums
-- each account's latest versions in CLUSTER_NORMAL; cyclades-reset-usage counts the live VMs,
-- their flavors' cpu, ram (MB) and disk (GB), and the private networks) against the usage the
-- quotaholder holds for them.
-- name: pithos
SELECT a.path AS holder, 'pithos+.diskspace' AS resource, coalesce(sum(v.size), 0)::text AS usage
FROM nodes a
LEFT JOIN nodes o ON split_part(o.path, '/', 1) = a.path AND o.path LIKE '%%/%%/%%'
LEFT JOIN versions v ON v.serial = o.latest_version AND v.cluster = 0
WHERE a.parent = 0 AND a.node != 0
GROUP BY a.path

-- name: cyclades
SELECT v.userid AS holder, r.resource, (CASE r.resource WHEN 'cyclades.vm' THEN count(*)
                                          WHEN 'cyclades.cpu' THEN sum(f.cpu)
                                          WHEN 'cyclades.ram' THEN sum(f.ram)::numeric * 1048576
                                          ELSE sum(f.disk)::numeric * 1073741824 END)::text AS usage
FROM db_virtualmachine v JOIN db_flavor f ON f.id = v.flavor_id
CROSS JOIN (VALUES ('cyclades.vm'), ('cyclades.cpu'), ('cyclades.ram'), ('cyclades.disk')) AS r (resource)
WHERE NOT v.deleted
GROUP BY v.userid, r.resource
UNION ALL
SELECT userid, 'cyclades.network.private', count(*)::text
FROM db_network WHERE NOT deleted AND NOT public AND userid IS NOT NULL
GROUP BY userid

-- name: holdings
SELECT entity_id AS holder, resource, imported::text AS usage
FROM quotaholder_app_holding
WHERE resource LIKE %(prefix)s
