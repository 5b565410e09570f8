-- Step db.timezones: whether the server can convert named zones. The server caches zones it
-- has looked up, so CONVERT_TZ alone can succeed with empty tables: both are checked.
-- name: check
SELECT CONVERT_TZ('2015-06-30 12:00:00', 'Europe/Prague', 'UTC') AS utc,
       (SELECT COUNT(*) FROM mysql.time_zone_name) AS zones
