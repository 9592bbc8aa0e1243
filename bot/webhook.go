package bot

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/store"
)

// signatureHeader is the only signature tern accepts: HMAC-SHA256 of the
// body with the webhook secret.
const signatureHeader = "X-Hub-Signature-256"

// maxHeaderID bounds X-GitHub-Delivery and X-GitHub-Event, as the ledger
// stores them (VARCHAR(64)). GitHub's delivery ids are UUIDs (36
// characters) and its event names are short; anything longer is not from
// GitHub.
const maxHeaderID = 64

// serveWebhook verifies, stores and acknowledges one delivery. The work is
// done later from what was stored, so an acknowledged delivery survives a
// crash. Deliveries arriving together are stored by group commit (see
// intake): the answer waits until this delivery's batch is durable.
func (b *Bot) serveWebhook(w http.ResponseWriter, r *http.Request) {
	event := github.WebHookType(r)
	if len(b.secret) == 0 {
		// go-github skips verification for an empty secret: refuse
		// instead of accepting unsigned deliveries.
		b.metrics.Delivery(event, "no_secret")
		b.log.Error("webhook refused: github.webhook_secret is not set", "event", event, "delivery", github.DeliveryID(r))
		http.Error(w, "this server cannot verify deliveries: github.webhook_secret is not set", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get(signatureHeader) == "" {
		// go-github falls back to the SHA-1 X-Hub-Signature when this
		// header is absent; only the SHA-256 signature counts.
		b.metrics.Delivery(event, "bad_signature")
		b.log.Warn("webhook refused: no "+signatureHeader, "event", event, "delivery", github.DeliveryID(r))
		http.Error(w, "missing "+signatureHeader+" (the SHA-1 X-Hub-Signature is not accepted)", http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	payload, err := github.ValidatePayload(r, b.secret)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			b.metrics.Delivery(event, "too_large")
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		b.metrics.Delivery(event, "bad_signature")
		b.log.Warn("webhook refused", "event", event, "delivery", github.DeliveryID(r), "err", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	id := github.DeliveryID(r)
	if id == "" || event == "" {
		http.Error(w, "missing X-GitHub-Delivery or X-GitHub-Event", http.StatusBadRequest)
		return
	}
	if len(id) > maxHeaderID || len(event) > maxHeaderID {
		b.metrics.Delivery("invalid", "bad_request")
		http.Error(w, fmt.Sprintf("X-GitHub-Delivery and X-GitHub-Event may hold at most %d characters", maxHeaderID), http.StatusBadRequest)
		return
	}
	fresh, err := b.intake.record(r.Context(), store.Delivery{ID: id, Event: event, Payload: payload, ReceivedAt: time.Now().UTC()})
	if err != nil {
		b.metrics.Delivery(event, "store_error")
		b.log.Error("record delivery", "delivery", id, "event", event, "err", err)
		http.Error(w, "could not store the delivery; redeliver it", http.StatusInternalServerError)
		return
	}
	if !fresh {
		b.metrics.Delivery(event, "duplicate")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("duplicate delivery: already recorded\n"))
		return
	}
	b.metrics.Delivery(event, "accepted")
	wake(b.wakeDeliveries)
	w.WriteHeader(http.StatusAccepted)
	w.Write([]byte("accepted\n"))
}
