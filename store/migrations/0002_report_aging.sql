-- tern ledger, version 2: reports that keep failing age instead of
-- starving newer ones. report_failures counts the failed reports of the
-- apply's current version (0 once one succeeds); report_failing_since is
-- when the first of them failed. A report-due apply is taken in order of
-- (report_failures, id), so applies GitHub never accepts (App uninstalled,
-- repository gone) go to the back; after long enough the pass gives up on
-- them. MySQL 8 has no ADD COLUMN IF NOT EXISTS: Migrate takes a
-- duplicate column or key as already done.

ALTER TABLE tern_applies ADD COLUMN report_failures INT NOT NULL DEFAULT 0;

ALTER TABLE tern_applies ADD COLUMN report_failing_since DATETIME(6) NULL;

ALTER TABLE tern_applies ADD KEY tern_applies_report_age (report_due, report_failures, id);
