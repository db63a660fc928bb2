DROP INDEX sync_runs_status;
DROP INDEX schedules_due;
ALTER TABLE sync_runs DROP COLUMN heartbeat_at;
ALTER TABLE schedules DROP COLUMN last_run_id;
