package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// `tern serve` gets SIGTERM while its apply runs a copying ALTER of a big
// table. MariaDB finishes such an ALTER after its client goes away, and a
// retry would then send it again; so the server must KILL QUERY the ALTER
// and see it gone before it records the attempt and exits. The retry then
// runs the change once.
func TestServeStoppedMidCopyKillsTheALTER(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_stop_live")
	server := testdb.Server(t)
	stmts := []string{usersV1, "INSERT INTO users (name) VALUES ('alice')"}
	for range 19 {
		stmts = append(stmts, "INSERT INTO users (name) SELECT name FROM users")
	}
	for _, s := range stmts {
		if _, err := live.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	// Shrinking the column makes the server copy the table.
	const shrunk = "CREATE TABLE users (\n  id BIGINT NOT NULL AUTO_INCREMENT,\n  name VARCHAR(50) NOT NULL,\n  PRIMARY KEY (id)\n);\n"
	w.gh.SetPermission(repoName, "alice", "write")
	w.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	w.gh.OpenPR(repoName, 8, headSHA, map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": shrunk})
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, liveName)
	cfg := w.config(
		`  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: "${SHOP_STAGING_DSN}", lock_wait_timeout: 30s}}`,
		"  interval: 0s\n  lease: 1m\n  max_attempts: 3\n  backoff_base: 1s\n  backoff_max: 1s")
	srv := w.serve(cfg)
	body, err := fakegithub.PRPayload("opened", repoName, 8, headSHA, installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "pull_request", body))
	c := w.gh.AddComment(repoName, 8, "alice", "User", "/tern apply -e staging --allow-unsafe")
	body, err = fakegithub.CommentPayload(repoName, 8, c.GetID(), "alice", "User", "/tern apply -e staging --allow-unsafe", installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "issue_comment", body))
	testdb.WaitForStage(t, server, liveName, "ALTER TABLE", "copy to tmp table")

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != 0 {
		t.Fatalf("tern serve exited %d after SIGTERM, want 0", code)
	}
	if left := testdb.Running(t, server, liveName, "ALTER TABLE"); left != "" {
		t.Fatalf("tern serve exited while its ALTER still runs on the server:\n%s", left)
	}
	if n := columnType(t, live, "users", "name"); n != "varchar(100)" {
		t.Fatalf("users.name is %s after the stop: the ALTER went on", n)
	}
	applies, err := w.st.AppliesForPR(ctx, repoName, 8)
	if err != nil || len(applies) != 1 {
		t.Fatalf("applies %v (%v)", applies, err)
	}
	a := applies[0]
	if a.State != store.FailedRetryable {
		t.Fatalf("apply after the stop is %s (%s), want failed_retryable: the attempt was not recorded", a.State, a.LastError)
	}
	if !strings.Contains(a.LastError, "KILL QUERY") {
		t.Errorf("last error %q does not say the DDL was stopped", a.LastError)
	}

	waitFor(t, "the retry to fall due", func() bool {
		got, err := w.st.Apply(ctx, a.ID)
		return err == nil && !time.Now().Before(got.NextAttemptAt)
	})
	out, sum := w.recoverPass(cfg)
	if sum != (summary{Recovered: 1}) {
		t.Fatalf("retrying pass: %+v, want recovered=1\n%s", sum, out)
	}
	if n := columnType(t, live, "users", "name"); n != "varchar(50)" {
		t.Errorf("users.name is %s after the retry, want varchar(50)", n)
	}
	if !strings.Contains(out, fmt.Sprintf("apply %d ", a.ID)) {
		t.Errorf("pass printed no line for apply %d:\n%s", a.ID, out)
	}
}

// columnType returns a column's COLUMN_TYPE in db's default database.
func columnType(t *testing.T, db *sql.DB, table, col string) string {
	t.Helper()
	var typ string
	if err := db.QueryRow(`SELECT COLUMN_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`, table, col).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}
