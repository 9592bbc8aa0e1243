package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	cryptosha1 "crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
)

// A delivery signed only with the SHA-1 X-Hub-Signature (which go-github's
// ValidatePayload accepts when the SHA-256 header is absent) is refused
// and stores nothing, even though the SHA-1 signature is right.
func TestWebhookRefusesSHA1OnlySignature(t *testing.T) {
	h := newHarness(t)
	body, err := fakegithub.PRPayload("opened", repoName, 2, sha1, inst)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(cryptosha1.New, []byte(secret))
	mac.Write(body)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"sha1 only", map[string]string{"X-Hub-Signature": "sha1=" + hex.EncodeToString(mac.Sum(nil))}, http.StatusUnauthorized},
		{"sha1 right, sha256 wrong", map[string]string{
			"X-Hub-Signature":     "sha1=" + hex.EncodeToString(mac.Sum(nil)),
			"X-Hub-Signature-256": fakegithub.Sign("not-the-secret", body),
		}, http.StatusUnauthorized},
		{"no signature", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, h.url, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "pull_request")
			req.Header.Set("X-GitHub-Delivery", "sig-"+strings.ReplaceAll(tc.name, " ", "-"))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	var n int
	if err := h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d deliveries stored (%v), want 0", n, err)
	}
}

// GitHub's delivery ids are UUIDs (36 characters). A correctly signed
// delivery whose id or event name is longer than tern stores (64
// characters) is a client error, 400, not a 500 from the ledger; one of
// exactly 64 is accepted.
func TestWebhookOverlongDeliveryID(t *testing.T) {
	h := newHarness(t)
	body, err := fakegithub.PRPayload("opened", repoName, 5, sha1, inst)
	if err != nil {
		t.Fatal(err)
	}
	h.gh.OpenPR(repoName, 5, sha1, map[string]string{"README.md": "x"})
	for _, tc := range []struct {
		event, id string
		want      int
	}{
		{"pull_request", strings.Repeat("d", 65), http.StatusBadRequest},
		{"pull_request", strings.Repeat("d", 4096), http.StatusBadRequest},
		{strings.Repeat("e", 65), "long-event", http.StatusBadRequest},
		{"pull_request", strings.Repeat("d", 64), http.StatusAccepted},
	} {
		resp, err := fakegithub.Deliver(context.Background(), h.url, tc.event, tc.id, secret, body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("event %d chars, id %d chars: status %d, want %d", len(tc.event), len(tc.id), resp.StatusCode, tc.want)
		}
	}
	h.waitProcessed(strings.Repeat("d", 64))
}
