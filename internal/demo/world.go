package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/bot"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/store"
)

// The cast and the repository.
const (
	repoName       = "acme/shop"
	prNumber       = 1
	prTitle        = "Add users.display_name and an index on orders.created_at"
	prAuthor       = "contributor"
	maintainer     = "alice"
	installationID = int64(4242)
	psOrg          = "acme"
	psDatabase     = "shop"
	psTokenID      = "demo-token-id"
	lockedTable    = "orders"
	lockWait       = time.Second
	backoffBase    = 2 * time.Second
)

// demo is the world the story happens in, and what it takes to tear it
// down.
type demo struct {
	p         *printer
	log       *slog.Logger
	keep      bool
	serverDSN string
	id        string
	version   string

	ledgerDB, stagingDB string

	admin   *sql.DB
	staging *sql.DB
	gh      *fakegithub.Server
	ps      *fakeps.Server
	app     *app.App
	st      *store.Store
	bot     *bot.Bot
	cfg     *config.Config
	hookURL string
	secret  string
	view    *prView
	head    string
	seq     int
	// blocker is the staging transaction that holds a metadata lock.
	blocker *sql.Tx

	// cleanups run in reverse order at the end.
	cleanups []func(ctx context.Context)
}

func (d *demo) onClose(f func(ctx context.Context)) { d.cleanups = append(d.cleanups, f) }

// close tears the world down, newest first, with a context of its own so
// that an interrupted demo still drops its databases.
func (d *demo) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i](ctx)
	}
}

// dsnFor is the server DSN naming database db.
func (d *demo) dsnFor(db string) string {
	c, _ := mysql.ParseDSN(d.serverDSN)
	c.DBName = db
	return c.FormatDSN()
}

// addr is the server's address, for display (the DSN may hold a password).
func (d *demo) addr() string {
	c, _ := mysql.ParseDSN(d.serverDSN)
	return c.Addr
}

// setup builds the world: the staging database, the PlanetScale stand-in
// whose main branch is production, the fake GitHub with the App installed,
// and tern (ledger, targets, planner, apply runner, bot and its webhook
// server) configured as a server config would configure it.
func (d *demo) setup(ctx context.Context) error {
	admin, err := sql.Open("mysql", d.serverDSN)
	if err != nil {
		return errors.New("open server: invalid DSN")
	}
	d.admin = admin
	d.onClose(func(context.Context) { admin.Close() })
	if err := admin.QueryRowContext(ctx, "SELECT VERSION()").Scan(&d.version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}

	prefix := "tern_demo_" + d.id
	d.ledgerDB, d.stagingDB = prefix+"_ledger", prefix+"_shop_staging"
	for _, name := range []string{d.ledgerDB, d.stagingDB} {
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
		d.onClose(func(ctx context.Context) {
			if !d.keep {
				admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
			}
		})
	}
	d.staging, err = sql.Open("mysql", d.dsnFor(d.stagingDB))
	if err != nil {
		return fmt.Errorf("open staging: %w", err)
	}
	d.onClose(func(context.Context) { d.staging.Close() })
	if err := exec(ctx, d.staging, liveSchema...); err != nil {
		return fmt.Errorf("seed staging: %w", err)
	}

	d.gh, err = fakegithub.New()
	if err != nil {
		return fmt.Errorf("start the GitHub stand-in: %w", err)
	}
	d.onClose(func(context.Context) { d.gh.Close() })
	d.gh.AddInstallation(repoName, installationID)
	d.gh.SetPermission(repoName, maintainer, "write")

	psToken := "pscale_tkn_" + randHex(16)
	d.secret = "whsec_" + randHex(16)
	d.p.secrets = append(d.p.secrets, psToken, d.secret, string(d.gh.PrivateKeyPEM))
	d.ps, err = fakeps.New(fakeps.Options{
		ServerDSN: d.serverDSN, Organization: psOrg, Database: psDatabase,
		ServiceTokenID: psTokenID, ServiceToken: psToken, Prefix: prefix + "_ps", Logger: d.log,
	})
	if err != nil {
		return fmt.Errorf("start the PlanetScale stand-in: %w", err)
	}
	d.onClose(func(context.Context) {
		// Close drops the branches' databases; with --keep the main
		// branch stays, and the stand-in ends with the process.
		if !d.keep {
			d.ps.Close()
		}
	})
	main, err := sql.Open("mysql", d.ps.MainDSN())
	if err != nil {
		return fmt.Errorf("open production: %w", err)
	}
	err = exec(ctx, main, liveSchema...)
	main.Close()
	if err != nil {
		return fmt.Errorf("seed production: %w", err)
	}

	off := false
	d.cfg = &config.Config{
		Listen: "127.0.0.1:0",
		Store:  config.Store{DSN: d.dsnFor(d.ledgerDB)},
		GitHub: config.GitHub{
			APIURL: d.gh.URL, AppID: d.gh.AppID,
			PrivateKey: string(d.gh.PrivateKeyPEM), WebhookSecret: d.secret,
		},
		Targets: []config.Target{
			{Repository: repoName, Database: "shop", Environment: "staging", MySQL: &config.MySQL{
				DSN: d.dsnFor(d.stagingDB), LockWaitTimeout: config.Duration(lockWait),
			}},
			{Repository: repoName, Database: "shop", Environment: "production", PlanetScale: &config.PlanetScale{
				Organization: psOrg, Database: psDatabase, Branch: "main",
				ServiceTokenID: psTokenID, ServiceToken: psToken, APIURL: d.ps.URL, TLS: &off,
			}},
		},
		Recovery: config.Recovery{
			MaxAttempts: 5, BackoffBase: config.Duration(backoffBase), BackoffMax: config.Duration(time.Minute),
			Lease: config.Duration(time.Minute), MaxRescues: 3,
		},
	}
	if err := d.cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}

	// The same wiring as `tern serve` and `tern recover`.
	d.app, err = app.New(ctx, d.cfg, app.Options{
		Logger:      d.log,
		PlanetScale: psdeploy.Options{PollInterval: 100 * time.Millisecond},
		Poll:        200 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("wire tern: %w", err)
	}
	d.onClose(func(context.Context) { d.app.Close() })
	d.st, d.bot = d.app.Store, d.app.Bot

	hook := httptest.NewServer(d.bot.Handler())
	d.onClose(func(context.Context) { hook.Close() })
	d.hookURL = hook.URL + "/webhook"
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.bot.Run(runCtx); close(done) }()
	d.onClose(func(context.Context) { stop(); <-done })

	d.view = &prView{p: d.p, gh: d.gh, repo: repoName, pr: prNumber, shown: map[int64]string{}}
	return nil
}

// deliver sends a signed webhook to the bot's HTTP handler, as GitHub
// does, and waits until the bot has processed it.
func (d *demo) deliver(ctx context.Context, event string, body []byte) error {
	d.seq++
	id := fmt.Sprintf("demo-%s-%d", d.id, d.seq)
	resp, err := fakegithub.Deliver(ctx, d.hookURL, event, id, d.secret, body)
	if err != nil {
		return fmt.Errorf("deliver %s: %w", event, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("deliver %s: the webhook answered %s, want 202 Accepted", event, resp.Status)
	}
	var lastErr string
	err = waitFor(ctx, "the "+event+" delivery to be processed", func(ctx context.Context) (bool, error) {
		state, le, err := deliveryState(ctx, d.st.DB(), id)
		lastErr = le
		// A failed attempt leaves the delivery pending, with its error,
		// for a retry; with both stand-ins in process any failure is a
		// fault worth stopping for.
		return state != "" && (state != "pending" || le != ""), err
	})
	if err != nil {
		return err
	}
	if lastErr != "" {
		return fmt.Errorf("tern failed to process the %s delivery: %s", event, lastErr)
	}
	return nil
}

// command posts a comment by user on the pull request and delivers its
// webhook.
func (d *demo) command(ctx context.Context, user, body string) error {
	c := d.gh.AddComment(repoName, prNumber, user, "User", body)
	payload, err := commentPayload(repoName, prNumber, c, installationID)
	if err != nil {
		return err
	}
	return d.deliver(ctx, "issue_comment", payload)
}

// waitApply waits until the PR's latest apply to env satisfies done and its
// state has been reported to GitHub, and returns it.
func (d *demo) waitApply(ctx context.Context, env, what string, done func(*store.Apply) bool) (*store.Apply, error) {
	var a *store.Apply
	err := waitFor(ctx, what, func(ctx context.Context) (bool, error) {
		cur, err := d.st.LatestApply(ctx, repoName, prNumber, "shop", env)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		a = cur
		return done(cur) && cur.ReportedVersion >= cur.Version, nil
	})
	return a, err
}
