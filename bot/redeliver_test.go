package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/store"
)

// deadHook is a webhook URL nothing listens on: tern is down.
const deadHook = "http://127.0.0.1:1/webhook"

// A /tern apply typed while tern was down (GitHub's one delivery attempt
// failed) is asked for again by the server's periodic look at the App's
// delivery log, and runs; asked once, not again once delivered.
func TestApplyTypedDuringOutageRunsAfter(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RedeliverInterval = 50 * time.Millisecond })
	h.gh.SetHook(h.url, secret)
	h.openPR(2, sha1, files(usersV2))

	h.gh.SetHook(deadHook, secret)
	c := h.gh.AddComment(repoName, 2, "alice", "User", "/tern apply -e staging")
	payload, err := fakegithub.CommentPayload(repoName, 2, c.GetID(), "alice", "User", "/tern apply -e staging", inst)
	if err != nil {
		t.Fatal(err)
	}
	guid, code := h.gh.SendWebhook(context.Background(), "issue_comment", payload)
	if code != 0 {
		t.Fatalf("delivery to a dead webhook answered %d", code)
	}
	h.gh.SetHook(h.url, secret) // tern is back

	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	if !hasColumn(t, h.staging, "users", "email") {
		t.Fatal("staging not changed")
	}
	h.waitProcessed(guid)

	res, err := h.bot.RedeliverMissed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Missed != 0 || res.Asked != 0 {
		t.Errorf("after the redelivery: %+v, want nothing missed or asked", res)
	}
	asks := 0
	for _, r := range h.gh.Requests() {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/app/hook/deliveries/") {
			asks++
		}
	}
	if asks != 1 {
		t.Errorf("%d redeliveries asked for, want 1", asks)
	}
	var redelivered int
	for _, d := range h.gh.HookDeliveries() {
		if d.GetGUID() == guid && d.GetRedelivery() {
			redelivered++
			if d.GetStatusCode() != 202 {
				t.Errorf("redelivery answered %d", d.GetStatusCode())
			}
		}
	}
	if redelivered != 1 {
		t.Errorf("%d redeliveries of %s, want 1", redelivered, guid)
	}
}

// One look asks for at most redeliverMax deliveries; a delivery recorded
// in the ledger (GitHub saw no answer in time) is not asked for.
func TestRedeliverMissedBounded(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RedeliverInterval = -1 })
	ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	// Recorded by tern, though GitHub logged a failure (answered too slowly).
	h.gh.SetHook(deadHook, secret)
	slow, _ := h.gh.SendWebhook(context.Background(), "ping", ping)
	if _, err := h.st.RecordDelivery(context.Background(), store.Delivery{ID: slow, Event: "ping", Payload: ping}); err != nil {
		t.Fatal(err)
	}
	h.gh.SetHook(deadHook, secret)
	n := redeliverMax + 5
	for range n {
		h.gh.SendWebhook(context.Background(), "ping", ping)
	}
	h.gh.SetHook(h.url, secret)
	for i, want := range []Redelivered{{Missed: n, Asked: redeliverMax}, {Missed: n - redeliverMax, Asked: n - redeliverMax}, {}} {
		got, err := h.bot.RedeliverMissed(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got.Listed = 0
		if got != want {
			t.Errorf("look %d: %+v, want %+v", i+1, got, want)
		}
	}
}
