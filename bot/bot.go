// Package bot is tern's GitHub App: it receives webhooks, stores them,
// turns pull-request events and `/tern` comments into plans and applies,
// runs the apply workers, and keeps check runs and comments in line with
// the ledger. It speaks GitHub; the SQL stays behind the store, the
// planner and the apply runner, and every word it writes on a PR comes
// from package report.
//
// The path of a command, file by file:
//
//   - webhook.go: verify the signature, store the delivery (intake.go
//     group-commits concurrent deliveries), acknowledge.
//   - deliveries.go: the worker that processes what was stored, with
//     retries, and dispatches by event.
//   - issue_comment.go (with command.go, the parser), pull_request.go,
//     check_run.go: one handler per event.
//   - planning.go: plan the PR head, store the plans, publish the plan
//     comment and check runs; applying.go: the checks of /tern apply, then
//     the lock and the queued apply.
//   - bot.go: the apply workers, which run queued applies through the
//     runner (apply.Runner) and hear its progress.
//   - reporter.go: bring the check runs and comments of an apply in line
//     with the ledger (the workers and the recovery pass call it);
//     checks.go: check runs; comments.go: the bot's PR comments, each
//     created once across processes and then edited in place.
//   - policy.go: the policy a PR is judged by, from tern.yaml at its base
//     commit; reading.go: tern.yaml and the schema files of a commit
//     through the git trees and blobs APIs.
//   - github.go: the other GitHub API calls (the pull request,
//     permissions, reviews, reactions, one-off replies).
package bot

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// Runner runs one claimed apply's attempt to its end and returns the apply
// as stored afterwards. (*apply.Runner).Run satisfies it.
type Runner interface {
	Run(ctx context.Context, a *store.Apply) (*store.Apply, error)
}

// Options configures a Bot.
type Options struct {
	// Config is the server config; github.app_id and the private key are
	// required, github.webhook_secret only to serve deliveries.
	Config *config.Config
	// Store is the ledger.
	Store *store.Store
	// Runner runs applies claimed by the workers (an *apply.Runner). Set
	// its Listener to the Bot so that progress shows on the PR.
	Runner Runner
	// Targets resolves (repository, database, environment) to an engine
	// and a shadow server, for planning.
	Targets apply.Targets
	// Planner plans. Default: a zero plan.Planner.
	Planner *plan.Planner
	// Logger receives the bot's log. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient is used for GitHub calls; its Transport is wrapped with
	// App authentication. Default http.DefaultClient.
	HTTPClient *http.Client
	// Metrics is served at /metrics and counts deliveries and API calls.
	// Default: a new registry over the store.
	Metrics *metrics.Metrics
	// Workers bounds how many applies run at once in this process.
	// Default 2.
	Workers int
	// Poll is how often the workers look for work nobody woke them for
	// (deliveries left by a crash, applies queued by another process).
	// Default 2s.
	Poll time.Duration
	// DeliveryAttempts bounds how many times a delivery whose processing
	// fails (GitHub answering 502, the ledger unreachable) is processed
	// before it is marked failed for good. Default 5.
	DeliveryAttempts int
	// DeliveryBackoff is the wait before the second attempt of a failed
	// delivery; it doubles after each attempt, up to 5 minutes. Default
	// 10s.
	DeliveryBackoff time.Duration
	// GitHubRetry bounds the waits for GitHub's rate limits and the
	// retries of failed GitHub requests (see RetryPolicy). Zero: defaults.
	GitHubRetry RetryPolicy
	// CoalesceWindow is the least time between two reports of a running
	// apply's progress to GitHub (check run and comment); the final state
	// is always reported at once. Default 10s; negative: every step.
	CoalesceWindow time.Duration
	// RedeliverInterval is how often Run looks for webhook deliveries
	// that failed (tern was down) and asks GitHub to deliver them again
	// (redeliver.go); it also looks at start. Default 5m; negative: never.
	RedeliverInterval time.Duration

	// coalesceClock and coalesceAfter replace the coalescer's clock and
	// timers in tests.
	coalesceClock func() time.Time
	coalesceAfter func(d time.Duration, f func()) func() bool
}

// Bot is the GitHub App. Create it with New, serve Handler, and call Run.
type Bot struct {
	cfg     *config.Config
	st      *store.Store
	runner  Runner
	planner targetPlanner
	log     *slog.Logger
	metrics *metrics.Metrics
	secret  []byte // github.webhook_secret; empty: deliveries refused
	apiURL  *url.URL
	// appAuth authenticates as the App; installation clients build on it.
	appAuth *ghinstallation.AppsTransport
	owner   string // this process in leases: host/pid/bot
	workers int
	poll    time.Duration
	now     func() time.Time

	deliveryAttempts int
	deliveryBackoff  time.Duration

	mu      sync.Mutex
	clients map[int64]*github.Client // by installation id

	wakeDeliveries chan struct{}
	wakeApplies    chan struct{}

	// intake stores webhook deliveries by group commit.
	intake *intake
	// progress spaces out the reports of running applies (coalesce.go).
	progress *coalescer
	// redeliverEvery is Options.RedeliverInterval; redelivered remembers
	// when this process asked for each delivery GUID (guarded by mu).
	redeliverEvery time.Duration
	redelivered    map[string]time.Time
	uploadURL      *url.URL // ghhost.go
	login          string   // this App's bot user, once read (guarded by mu)
	// sleep waits between asks that are not retries of one request
	// (mergeable.go); GitHubRetry.Sleep.
	sleep func(ctx context.Context, d time.Duration) error
	// writeBound is how long a GitHub write sent may still land: one
	// try's timeout and a margin (see store.BeginReportWrite).
	writeBound time.Duration

	// blobs caches schema files and tern.yaml by blob SHA.
	blobs *blobCache

	// prLocks serialise the work on one pull request (its plan comment,
	// check runs and applies) inside this process.
	prLocks [64]sync.Mutex
}

// blobCacheBytes bounds the memory the blob cache holds.
const blobCacheBytes = 64 << 20

// maxBody caps a webhook body, as GitHub caps payloads at 25 MB.
const maxBody = 25 << 20

// RequireWebhookSecret checks that cfg names the secret that webhook
// deliveries are signed with. `tern serve` needs it before it starts;
// commands that only report to GitHub (`tern recover`) do not.
func RequireWebhookSecret(cfg *config.Config) error {
	if cfg.GitHub.WebhookSecret == "" {
		return errors.New("github.webhook_secret: required to verify webhook deliveries (X-Hub-Signature-256)")
	}
	return nil
}

// New checks the options and builds the App's GitHub authentication. The
// webhook secret is optional here: without it the Bot reports to GitHub
// but its Handler refuses every delivery, as none can be verified. A
// server checks RequireWebhookSecret before it starts.
func New(opts Options) (*Bot, error) {
	if opts.Config == nil || opts.Store == nil || opts.Runner == nil || opts.Targets == nil {
		return nil, errors.New("bot: Config, Store, Runner and Targets are required")
	}
	if opts.Planner == nil {
		opts.Planner = &plan.Planner{Logger: opts.Logger, Limits: plan.LimitsFromConfig(opts.Config.Limits)}
	}
	cfg := opts.Config
	if err := cfg.RequireGitHub(); err != nil {
		return nil, err
	}
	m := opts.Metrics
	if m == nil {
		m = metrics.New(opts.Store.DB())
	}
	api, atr, err := appTransport(cfg.GitHub, opts.HTTPClient, m, opts.GitHubRetry)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	b := &Bot{
		cfg:            cfg,
		st:             opts.Store,
		runner:         opts.Runner,
		planner:        targetPlanner{targets: opts.Targets, planner: opts.Planner},
		log:            log,
		metrics:        m,
		secret:         []byte(cfg.GitHub.WebhookSecret),
		apiURL:         api,
		appAuth:        atr,
		owner:          fmt.Sprintf("%s/%d/bot", host, os.Getpid()),
		workers:        opts.Workers,
		poll:           opts.Poll,
		now:            time.Now,
		clients:        map[int64]*github.Client{},
		wakeDeliveries: make(chan struct{}, 1),
		wakeApplies:    make(chan struct{}, 1),
		intake:         &intake{st: opts.Store},
		blobs:          newBlobCache(blobCacheBytes),
	}
	b.redeliverEvery, b.redelivered = opts.RedeliverInterval, map[string]time.Time{}
	if b.redeliverEvery == 0 {
		b.redeliverEvery = defaultRedeliverInterval
	}
	b.uploadURL = uploadURLFor(b.apiURL)
	b.sleep = opts.GitHubRetry.withDefaults().Sleep
	b.writeBound = opts.GitHubRetry.withDefaults().TryTimeout + writeBoundMargin
	b.progress = newCoalescer(opts.CoalesceWindow, b.reportQuiet)
	if opts.coalesceClock != nil {
		b.progress.now, b.progress.after = opts.coalesceClock, opts.coalesceAfter
	}
	if b.workers <= 0 {
		b.workers = 2
	}
	if b.poll <= 0 {
		b.poll = 2 * time.Second
	}
	b.deliveryAttempts, b.deliveryBackoff = opts.DeliveryAttempts, opts.DeliveryBackoff
	if b.deliveryAttempts <= 0 {
		b.deliveryAttempts = 5
	}
	if b.deliveryBackoff <= 0 {
		b.deliveryBackoff = 10 * time.Second
	}
	return b, nil
}

// appTransport authenticates as the GitHub App gh names, over hc's
// transport (default http.DefaultClient's), counting every call in m and
// waiting out rate limits and retrying under retry (transport.go). It
// returns the API's base URL, with a trailing slash, and the transport.
func appTransport(gh config.GitHub, hc *http.Client, m *metrics.Metrics, retry RetryPolicy) (*url.URL, *ghinstallation.AppsTransport, error) {
	key, err := gh.PrivateKeyPEM()
	if err != nil {
		return nil, nil, err
	}
	api, err := url.Parse(strings.TrimRight(gh.APIURL, "/") + "/")
	if err != nil {
		return nil, nil, fmt.Errorf("github.api_url: %w", err)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	atr, err := ghinstallation.NewAppsTransport(newRetryTransport(m.Transport("github", base), retry), gh.AppID, key)
	if err != nil {
		// The library's message does not include the key.
		return nil, nil, fmt.Errorf("github.private_key: %w", err)
	}
	atr.BaseURL = strings.TrimRight(api.String(), "/")
	return api, atr, nil
}

// client returns the GitHub client of an installation.
func (b *Bot) client(installationID int64) (*github.Client, error) {
	if installationID == 0 {
		return nil, errors.New("no installation id: is the GitHub App installed on this repository?")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[installationID]; ok {
		return c, nil
	}
	itr := ghinstallation.NewFromAppsTransport(b.appAuth, installationID)
	itr.BaseURL = b.appAuth.BaseURL
	// No client timeout: each try has its own (retryTransport), and
	// waiting out a rate limit may take longer than one try may.
	c := github.NewClient(&http.Client{Transport: itr})
	c.BaseURL = b.apiURL
	c.UploadURL = b.uploadURL
	b.clients[installationID] = c
	return c, nil
}

// lockPR serialises work on one pull request within this process and
// returns the unlock function.
func (b *Bot) lockPR(repo string, pr int) func() {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s#%d", strings.ToLower(repo), pr)
	m := &b.prLocks[h.Sum32()%uint32(len(b.prLocks))]
	m.Lock()
	return m.Unlock
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Handler serves POST /webhook, GET /healthz and GET /metrics.
func (b *Bot) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", b.serveWebhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := b.st.Ping(ctx); err != nil {
			http.Error(w, "store unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", b.metrics.Handler())
	return mux
}

// Run processes stored deliveries and runs pending applies until ctx is
// done. New deliveries and applies wake it at once; it also polls, so work
// left by a crashed process is picked up after a restart.
func (b *Bot) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1 + b.workers)
	go func() { defer wg.Done(); b.deliveryLoop(ctx) }()
	if b.redeliverEvery > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); b.redeliverLoop(ctx, b.redeliverEvery) }()
	}
	for i := 0; i < b.workers; i++ {
		go func() { defer wg.Done(); b.applyLoop(ctx) }()
	}
	wg.Wait()
	return ctx.Err()
}

// applyLoop claims pending applies one at a time and runs them.
func (b *Bot) applyLoop(ctx context.Context) {
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for ctx.Err() == nil {
		began := time.Now()
		claimed, err := b.st.Claim(ctx, store.ClaimOptions{
			Owner: b.owner, Limit: 1, Lease: b.cfg.Recovery.Lease.D(), States: []store.State{store.Pending},
		})
		b.metrics.Claim(time.Since(began))
		if err != nil && ctx.Err() == nil {
			b.log.Error("claim applies", "err", err)
		}
		for _, a := range claimed {
			b.runApply(ctx, a)
		}
		if len(claimed) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-b.wakeApplies:
		case <-t.C:
		}
	}
}

func (b *Bot) runApply(ctx context.Context, a *store.Apply) {
	log := b.log.With("apply", a.ID, "repo", a.Repository, "pr", a.PR, "database", a.Database, "env", a.Environment)
	log.Info("apply claimed", "attempt", a.Attempt)
	b.reportQuiet(ctx, a)
	b.progress.start(a.ID)
	after, err := b.runner.Run(ctx, a)
	b.progress.done(a.ID)
	if err != nil {
		log.Error("run apply", "err", err)
	}
	if after == nil {
		after = a
	}
	b.reportQuiet(ctx, after)
	log.Info("apply attempt ended", "state", after.State)
}

// reportQuiet reports an apply, taking the PR's lock, and logs a failure;
// the recovery pass retries reports that did not reach GitHub.
func (b *Bot) reportQuiet(ctx context.Context, a *store.Apply) {
	if err := b.Reporter().Report(ctx, a); err != nil && ctx.Err() == nil {
		b.log.Warn("report apply to GitHub", "apply", a.ID, "err", err)
	}
}

// reportHeld is report for a caller that holds the PR's lock (a command):
// a failure is logged, and the recovery pass retries the report.
func (b *Bot) reportHeld(ctx context.Context, a *store.Apply) {
	if err := b.report(ctx, a); err != nil {
		b.log.Warn("report apply", "apply", a.ID, "err", err)
	}
}

// ApplyEvent implements apply.Listener: the steps of an attempt are shown
// on the pull request, at most one report per apply every 10 seconds
// (coalesce.go); the attempt's end is reported at once by runApply.
func (b *Bot) ApplyEvent(ctx context.Context, e apply.Event) {
	if e.Apply != nil {
		b.progress.step(ctx, e.Apply)
	}
}
