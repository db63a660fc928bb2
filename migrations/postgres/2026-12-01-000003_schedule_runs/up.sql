-- The run a schedule started last (its status is shown beside the schedule).
ALTER TABLE schedules ADD COLUMN last_run_id BIGINT;
-- A live run writes this as it goes; a run nobody writes for a lease's length was abandoned.
ALTER TABLE sync_runs ADD COLUMN heartbeat_at BIGINT;
CREATE INDEX schedules_due ON schedules(next_run_at);
CREATE INDEX sync_runs_status ON sync_runs(status);
