-- Step api.default-resources: default cluster resources of new objects, class_name Vps and
-- User, in every environment, for every cluster resource (runbook: "Table
-- default_object_cluster_resources").
-- name: cluster_resources
SELECT id, name FROM cluster_resources ORDER BY id

-- name: defaults
SELECT d.id, d.environment_id, d.class_name, d.cluster_resource_id, d.value
FROM default_object_cluster_resources d ORDER BY d.id

-- name: insert
INSERT INTO default_object_cluster_resources (environment_id, cluster_resource_id, class_name, value)
VALUES (%(environment_id)s, %(cluster_resource_id)s, %(class_name)s, %(value)s)

-- name: update
UPDATE default_object_cluster_resources SET value = %(value)s WHERE id = %(id)s
