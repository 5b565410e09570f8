-- Step s5.load-resources: the services and resources Astakos 0.13 holds (im_service,
-- im_resource; research synnefo.md §1 "Quota tables"), compared with ASTAKOS_SERVICES.
-- name: services
SELECT id, name FROM im_service ORDER BY id

-- name: resources
SELECT s.name AS service, r.name, r.uplimit::text AS uplimit
FROM im_resource r JOIN im_service s ON s.id = r.service_id
ORDER BY 1, 2
