-- Issue 11.3: a report's GitHub writes are recorded with the apply, so
-- that a reporter that took over from another (whose lease was lost, or
-- which died) knows whether one of the other's writes may still land after
-- its own. report_writer is the token of the reporter writing the apply
-- now ('' when none); report_write_at is when its write in flight was sent
-- (NULL when none is); report_recheck_at is when the apply must be
-- reported again, everything rewritten, because a write sent before that
-- may have landed after newer ones.
ALTER TABLE tern_applies
  ADD COLUMN report_writer VARCHAR(64) NOT NULL DEFAULT '',
  ADD COLUMN report_write_at DATETIME(6) NULL,
  ADD COLUMN report_recheck_at DATETIME(6) NULL;

ALTER TABLE tern_applies ADD KEY tern_applies_recheck (report_recheck_at);
