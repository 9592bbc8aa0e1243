-- Issue 14: the ALGORITHM/LOCK each task promised in its plan, a long
-- DDL's progress, and whether the apply allows blocking statements.
ALTER TABLE tern_tasks
  ADD COLUMN algorithm VARCHAR(16) NOT NULL DEFAULT '',
  ADD COLUMN lock_mode VARCHAR(16) NOT NULL DEFAULT '',
  ADD COLUMN progress_stage VARCHAR(64) NOT NULL DEFAULT '',
  ADD COLUMN progress_percent DOUBLE NULL,
  ADD COLUMN progress_remaining_s INT NULL,
  ADD COLUMN progress_at DATETIME(6) NULL;

ALTER TABLE tern_applies
  ADD COLUMN allow_blocking TINYINT(1) NOT NULL DEFAULT 0;
