package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// liveSchema is what staging and production hold before the pull request.
var liveSchema = []string{
	"CREATE TABLE users (\n" +
		"  id bigint NOT NULL AUTO_INCREMENT,\n" +
		"  email varchar(255) NOT NULL,\n" +
		"  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,\n" +
		"  PRIMARY KEY (id),\n" +
		"  UNIQUE KEY users_email (email)\n" +
		")",
	"CREATE TABLE orders (\n" +
		"  id bigint NOT NULL AUTO_INCREMENT,\n" +
		"  user_id bigint NOT NULL,\n" +
		"  total_cents int NOT NULL,\n" +
		"  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,\n" +
		"  PRIMARY KEY (id),\n" +
		"  KEY orders_user (user_id)\n" +
		")",
	"INSERT INTO users (email, created_at) VALUES ('ada@example.com', '2024-01-02 10:00:00'), " +
		"('grace@example.com', '2024-02-03 11:00:00'), ('linus@example.com', '2024-03-04 12:00:00')",
	"INSERT INTO orders (user_id, total_cents, created_at) VALUES (1, 1299, '2024-04-01 09:00:00'), " +
		"(1, 4500, '2024-04-02 09:30:00'), (2, 899, '2024-04-03 14:00:00'), (3, 15000, '2024-04-05 16:45:00'), " +
		"(2, 2350, '2024-04-06 08:15:00')",
}

// prFiles is the tree at the pull request's head: the repository config
// and the desired schema, which adds a column to users and an index to
// orders.
var prFiles = map[string]string{
	"tern.yaml": "databases:\n" +
		"  - name: shop\n" +
		"    schema_dir: db/shop\n" +
		"    environments: [staging, production]\n",
	"db/shop/users.sql": "-- People who buy things.\n" +
		"CREATE TABLE users (\n" +
		"  id bigint NOT NULL AUTO_INCREMENT,\n" +
		"  email varchar(255) NOT NULL,\n" +
		"  display_name varchar(100) DEFAULT NULL,\n" +
		"  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,\n" +
		"  PRIMARY KEY (id),\n" +
		"  UNIQUE KEY users_email (email)\n" +
		");\n",
	"db/shop/orders.sql": "-- What they bought.\n" +
		"CREATE TABLE orders (\n" +
		"  id bigint NOT NULL AUTO_INCREMENT,\n" +
		"  user_id bigint NOT NULL,\n" +
		"  total_cents int NOT NULL,\n" +
		"  created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,\n" +
		"  PRIMARY KEY (id),\n" +
		"  KEY orders_user (user_id),\n" +
		"  KEY orders_created (created_at)\n" +
		");\n",
}

// intro prints the cast: where staging and production live, and tern.
func (d *demo) intro(ctx context.Context) error {
	d.p.printf("tern demo: a schema change from pull request to production, on this machine.\n")
	d.p.printf("GitHub and PlanetScale are in-process stand-ins; the database server, and tern itself, are real.\n\n")
	d.p.heading(1, "Two environments of the database `shop`")
	d.p.printf("  staging      MySQL target: database %s on %s (%s)\n", d.stagingDB, d.addr(), d.version)
	d.p.printf("  production   PlanetScale target: organization %s, database %s, branch main (stand-in at %s)\n", psOrg, psDatabase, d.ps.URL)
	d.p.printf("  tables       users (3 rows), orders (5 rows), the same in both\n")
	d.p.printf("  tern         GitHub App for %s (webhook %s), ledger in database %s\n\n", repoName, d.hookURL, d.ledgerDB)
	return nil
}

// openPR opens the pull request and lets tern autoplan it.
func (d *demo) openPR(ctx context.Context) error {
	d.head = randHex(20)
	// tern is set up on the default branch; the PR brings the schema change.
	d.gh.SetBase(repoName, map[string]string{"tern.yaml": prFiles["tern.yaml"]})
	d.gh.OpenPR(repoName, prNumber, d.head, prFiles)
	d.p.heading(2, fmt.Sprintf("@%s opens %s#%d: %q", prAuthor, repoName, prNumber, prTitle))
	names := make([]string, 0, len(prFiles))
	for n := range prFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	d.p.printf("  Files at %s: %s\n", short(d.head), strings.Join(names, ", "))
	d.p.printf("  (users gains display_name; orders gains the index orders_created)\n")
	body, err := prPayload("opened", repoName, prNumber, d.head, installationID)
	if err != nil {
		return err
	}
	if err := d.deliver(ctx, "pull_request", body); err != nil {
		return err
	}
	d.p.printf("  GitHub sends tern the pull_request webhook, signed; tern answers 202 Accepted and\n")
	d.p.printf("  plans every environment in tern.yaml. (Comments reach tern the same way.)\n\n")
	d.view.news()
	d.view.checks(d.head)
	for env, want := range map[string]string{"staging": "Awaiting apply", "production": "Waiting for staging"} {
		r := d.gh.LatestCheckRun(repoName, d.head, "tern/shop/"+env)
		if r == nil || !strings.HasPrefix(r.GetOutput().GetTitle(), want) {
			return fmt.Errorf("autoplan: check tern/shop/%s is %q, want %q", env, r.GetOutput().GetTitle(), want)
		}
	}
	return nil
}

// applyStaging applies to staging while another session holds a metadata
// lock on the table the plan alters: the attempt fails transiently and is
// left for a retry.
func (d *demo) applyStaging(ctx context.Context) error {
	d.p.heading(3, "@"+maintainer+" applies to staging, while a long transaction holds `"+lockedTable+"`")
	tx, err := d.staging.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("open the blocking transaction: %w", err)
	}
	d.blocker = tx
	d.onClose(func(context.Context) {
		if d.blocker != nil {
			d.blocker.Rollback()
		}
	})
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+lockedTable).Scan(&n); err != nil {
		return fmt.Errorf("read %s in the blocking transaction: %w", lockedTable, err)
	}
	d.p.printf("  A report on staging read %s (%d rows) in a transaction it has not ended: it holds a\n", lockedTable, n)
	d.p.printf("  metadata lock, so ALTER TABLE %s must wait, at most lock_wait_timeout = %s.\n\n", lockedTable, lockWait)
	if err := d.command(ctx, maintainer, "/tern apply -e staging"); err != nil {
		return err
	}
	a, err := d.waitApply(ctx, "staging", "the staging apply's first attempt to end", func(a *store.Apply) bool {
		return a.State == store.FailedRetryable || a.State.Terminal()
	})
	if err != nil {
		return err
	}
	d.view.news()
	d.view.checks(d.head)
	if a.State != store.FailedRetryable {
		return fmt.Errorf("the staging apply ended %s (%s), want failed_retryable: the lock did not make it fail transiently", a.State, a.LastError)
	}
	return nil
}

// recover releases the lock and runs recovery passes, as `tern recover`
// does, until one has run the due retry.
func (d *demo) recover(ctx context.Context) error {
	d.p.heading(4, "The lock goes away; a recovery pass retries the apply")
	a, err := d.st.LatestApply(ctx, repoName, prNumber, "shop", "staging")
	if err != nil {
		return fmt.Errorf("staging apply: %w", err)
	}
	if err := d.releaseLock(); err != nil {
		return err
	}
	d.p.printf("  The report's transaction ends. Nobody types anything: attempt %d is due at %s UTC\n",
		a.Attempt+1, a.NextAttemptAt.UTC().Format("15:04:05"))
	d.p.printf("  (backoff %s after attempt 1), and the next recovery pass takes it. The scheduled\n", backoffBase)
	d.p.printf("  GitHub Action runs such a pass; here it is run directly:\n\n")
	if wait := time.Until(a.NextAttemptAt); wait > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the retry to come due: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	pass := d.app.RecoveryPass()
	var (
		res  *recovery.Result
		line recovery.Line
	)
	err = waitFor(ctx, "a recovery pass that runs the staging retry", func(ctx context.Context) (bool, error) {
		r, err := pass.Run(ctx)
		if err != nil {
			return false, err
		}
		for _, l := range r.Lines {
			if l.Apply.ID == a.ID {
				res, line = r, l
				return true, nil
			}
		}
		// Not due yet by the database's clock: try again shortly.
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	d.p.printf("  $ tern recover\n")
	for _, l := range res.Lines {
		d.p.printf("  %s\n", l.String())
	}
	d.p.printf("  %s\n\n", res.Summary())
	if line.Apply.State != store.Completed {
		return fmt.Errorf("the recovery pass left the staging apply %s: %s", line.Apply.State, line.Outcome())
	}
	a, err = d.waitApply(ctx, "staging", "the staging apply to be reported", func(a *store.Apply) bool { return a.State.Terminal() })
	if err != nil {
		return err
	}
	d.view.news()
	d.view.checks(d.head)
	if a.State != store.Completed {
		return fmt.Errorf("the staging apply ended %s (%s) after the recovery pass, want completed", a.State, a.LastError)
	}
	return nil
}

// releaseLock ends the blocking transaction.
func (d *demo) releaseLock() error {
	if d.blocker == nil {
		return errors.New("no blocking transaction to release")
	}
	err := d.blocker.Rollback()
	d.blocker = nil
	if err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("end the blocking transaction: %w", err)
	}
	return nil
}

// applyProduction applies to production through a PlanetScale deploy
// request.
func (d *demo) applyProduction(ctx context.Context) error {
	d.p.heading(5, "@"+maintainer+" applies to production, a PlanetScale database")
	d.p.printf("  tern makes a branch of main, runs the DDL there, opens a deploy request and deploys it.\n\n")
	if err := d.command(ctx, maintainer, "/tern apply -e production"); err != nil {
		return err
	}
	a, err := d.waitApply(ctx, "production", "the production apply to end", func(a *store.Apply) bool { return a.State.Terminal() })
	if err != nil {
		return err
	}
	if a.State != store.Completed {
		d.view.news()
		return fmt.Errorf("the production apply ended %s (%s), want completed", a.State, a.LastError)
	}
	d.view.news()
	if n := a.EngineState[psdeploy.StateDeployRequest]; n != "" {
		d.p.printf("  PlanetScale: deploy request #%s was deployed to main.\n\n", n)
	}
	d.view.checks(d.head)
	return nil
}

// final shows the pull request as a person scrolling it sees it.
func (d *demo) final(ctx context.Context) error {
	d.p.heading(6, fmt.Sprintf("%s#%d, top to bottom", repoName, prNumber))
	d.view.all()
	d.view.checks(d.head)
	return nil
}

// summary prints the one-line summary, checking the schemas it claims.
func (d *demo) summary(took time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live := func(dsn string) string {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return "unreadable"
		}
		defer db.Close()
		var cols, idx int
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'display_name'").Scan(&cols)
		db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders' AND INDEX_NAME = 'orders_created'").Scan(&idx)
		if cols == 1 && idx > 0 {
			return "changed"
		}
		return "NOT changed"
	}
	agg := "missing"
	if r := d.gh.LatestCheckRun(repoName, d.head, "tern"); r != nil {
		agg = checkState(r)
	}
	a, _ := d.st.LatestApply(ctx, repoName, prNumber, "shop", "staging")
	attempts := 0
	if a != nil {
		attempts = a.Attempt
	}
	d.p.printf("\nDone in %.1fs: staging %s (applied after %d attempts, one lock timeout), production %s (deploy request), check `tern`: %s.\n",
		took.Seconds(), live(d.dsnFor(d.stagingDB)), attempts, live(d.ps.MainDSN()), agg)
}
