-- tern ledger, version 1. SQL common to MySQL 8.0+ and MariaDB 10.6+.
-- Every statement is idempotent (IF NOT EXISTS): a run cut short by a
-- crash is finished by the next one. All times are UTC, DATETIME(6).

CREATE TABLE IF NOT EXISTS tern_plans (
  id BIGINT NOT NULL AUTO_INCREMENT,
  repository VARCHAR(200) NOT NULL,
  pr INT NOT NULL,
  head_sha VARCHAR(64) NOT NULL,
  installation_id BIGINT NOT NULL,
  database_name VARCHAR(64) NOT NULL,
  environment VARCHAR(64) NOT NULL,
  desired_hash VARCHAR(128) NOT NULL,
  desired LONGBLOB NOT NULL,
  statements LONGTEXT NOT NULL,
  lint LONGBLOB NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY tern_plans_pr (repository, pr, database_name, environment, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS tern_applies (
  id BIGINT NOT NULL AUTO_INCREMENT,
  plan_id BIGINT NOT NULL,
  repository VARCHAR(200) NOT NULL,
  pr INT NOT NULL,
  head_sha VARCHAR(64) NOT NULL,
  installation_id BIGINT NOT NULL,
  database_name VARCHAR(64) NOT NULL,
  environment VARCHAR(64) NOT NULL,
  desired_hash VARCHAR(128) NOT NULL,
  state VARCHAR(20) NOT NULL,
  attempt INT NOT NULL,
  max_attempts INT NOT NULL,
  rescues INT NOT NULL,
  next_attempt_at DATETIME(6) NOT NULL,
  lease_owner VARCHAR(255) NOT NULL,
  lease_token VARCHAR(64) NOT NULL,
  lease_expires_at DATETIME(6) NULL,
  last_error MEDIUMTEXT NOT NULL,
  error_class VARCHAR(64) NOT NULL,
  requested_by VARCHAR(100) NOT NULL,
  allow_unsafe TINYINT(1) NOT NULL,
  engine_state MEDIUMTEXT NOT NULL,
  version BIGINT NOT NULL,
  reported_version BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL,
  -- The repository while the apply is active, NULL otherwise: with the
  -- unique key below, at most one active apply per target.
  active_repository VARCHAR(200) AS (IF(state IN ('pending', 'running', 'failed_retryable'), repository, NULL)) STORED,
  -- 1 while GitHub has not seen the latest version, NULL otherwise.
  report_due TINYINT AS (IF(reported_version < version, 1, NULL)) STORED,
  PRIMARY KEY (id),
  UNIQUE KEY tern_applies_active (active_repository, database_name, environment),
  KEY tern_applies_due (state, next_attempt_at, id),
  KEY tern_applies_lease (state, lease_expires_at, id),
  KEY tern_applies_pr (repository, pr, database_name, environment, id),
  KEY tern_applies_report (report_due, id),
  KEY tern_applies_plan (plan_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS tern_tasks (
  id BIGINT NOT NULL AUTO_INCREMENT,
  apply_id BIGINT NOT NULL,
  seq INT NOT NULL,
  statement MEDIUMTEXT NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  kind VARCHAR(16) NOT NULL,
  instant TINYINT(1) NOT NULL,
  state VARCHAR(20) NOT NULL,
  attempt INT NOT NULL,
  last_error MEDIUMTEXT NOT NULL,
  error_class VARCHAR(64) NOT NULL,
  skipped TINYINT(1) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  started_at DATETIME(6) NULL,
  finished_at DATETIME(6) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY tern_tasks_seq (apply_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS tern_locks (
  repository VARCHAR(200) NOT NULL,
  database_name VARCHAR(64) NOT NULL,
  environment VARCHAR(64) NOT NULL,
  pr INT NOT NULL,
  installation_id BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (repository, database_name, environment),
  KEY tern_locks_pr (repository, pr)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS tern_deliveries (
  id VARCHAR(64) NOT NULL,
  event VARCHAR(64) NOT NULL,
  payload MEDIUMBLOB NOT NULL,
  state VARCHAR(20) NOT NULL,
  attempts INT NOT NULL,
  -- When a pending delivery may next be claimed: its arrival, then the end
  -- of each processing lease.
  available_at DATETIME(6) NOT NULL,
  lease_owner VARCHAR(255) NOT NULL,
  last_error MEDIUMTEXT NOT NULL,
  received_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL,
  PRIMARY KEY (id),
  KEY tern_deliveries_due (state, available_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS tern_github_refs (
  repository VARCHAR(200) NOT NULL,
  ref_key VARCHAR(191) NOT NULL,
  ref_id BIGINT NOT NULL,
  meta TEXT NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (repository, ref_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS tern_events (
  id BIGINT NOT NULL AUTO_INCREMENT,
  at DATETIME(6) NOT NULL,
  apply_id BIGINT NOT NULL,
  repository VARCHAR(200) NOT NULL,
  pr INT NOT NULL,
  actor VARCHAR(255) NOT NULL,
  action VARCHAR(64) NOT NULL,
  detail MEDIUMTEXT NOT NULL,
  PRIMARY KEY (id),
  KEY tern_events_apply (apply_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
