package fakegithub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/go-github/v60/github"
)

// hooks is the App's webhook: where deliveries go and the log of every
// attempt, which GitHub keeps for three days and lists to the App.
type hooks struct {
	url, secret string
	log         []*hookAttempt // oldest first
}

// hookAttempt is one attempt to deliver an event: its record as the
// deliveries API shows it, and the payload a redelivery sends again.
type hookAttempt struct {
	d       github.HookDelivery
	payload []byte
}

const docDeliveries = "https://docs.github.com/rest/apps/webhooks#list-deliveries-for-an-app-webhook"

// SetHook sets the App's webhook URL and secret, where SendWebhook and
// redeliveries deliver.
func (s *Server) SetHook(url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.url, s.hooks.secret = url, secret
}

// SendWebhook delivers an event to the App's webhook as GitHub does, once
// (GitHub never retries by itself), and records the attempt in the App's
// delivery log: status "OK" for a 2xx answer, the answer's code otherwise,
// and status_code 0 when the webhook did not answer. It returns the
// delivery's GUID (X-GitHub-Delivery) and the attempt's status code.
func (s *Server) SendWebhook(ctx context.Context, event string, payload []byte) (guid string, status int) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	guid = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	return guid, s.attempt(ctx, guid, event, payload, false)
}

// attempt delivers payload under guid and logs the attempt.
func (s *Server) attempt(ctx context.Context, guid, event string, payload []byte, redelivery bool) int {
	s.mu.Lock()
	hookURL, secret := s.hooks.url, s.hooks.secret
	s.mu.Unlock()
	began := time.Now()
	code, status := 0, "failed to connect"
	if hookURL != "" {
		if resp, err := Deliver(ctx, hookURL, event, guid, secret, payload); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
			status = "OK"
			if code < 200 || code > 299 {
				status = fmt.Sprintf("Invalid HTTP Response: %d", code)
			}
		}
	}
	var action *string
	if a, ok := payloadAction(payload); ok {
		action = &a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id()
	s.hooks.log = append(s.hooks.log, &hookAttempt{payload: payload, d: github.HookDelivery{
		ID: github.Int64(id), GUID: github.String(guid), DeliveredAt: &github.Timestamp{Time: began.UTC()},
		Redelivery: github.Bool(redelivery), Duration: ptr(time.Since(began).Seconds()),
		Status: github.String(status), StatusCode: github.Int(code), Event: github.String(event), Action: action,
	}})
	return code
}

// HookDeliveries returns the App's delivery log, newest first, as
// GET /app/hook/deliveries lists it.
func (s *Server) HookDeliveries() []*github.HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*github.HookDelivery, 0, len(s.hooks.log))
	for i := len(s.hooks.log) - 1; i >= 0; i-- {
		d := s.hooks.log[i].d
		out = append(out, &d)
	}
	return out
}

// handleListHookDeliveries answers GET /app/hook/deliveries: newest first,
// per_page (default 30, at most 100) and an opaque cursor, with a Link
// header naming the next page's cursor as GitHub does.
func (s *Server) handleListHookDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	per := 30
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeValidation(w, docDeliveries, "HookDelivery", "per_page", "invalid", "")
			return
		}
		per = min(n, 100)
	}
	all := s.HookDeliveries()
	start := 0
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > len(all) {
			writeError(w, http.StatusBadRequest, "Invalid cursor", docDeliveries)
			return
		}
		start = n
	}
	end := min(start+per, len(all))
	if end < len(all) {
		next := url.Values{"per_page": {strconv.Itoa(per)}, "cursor": {strconv.Itoa(end)}}
		w.Header().Set("Link", fmt.Sprintf(`<%sapp/hook/deliveries?%s>; rel="next"`, s.URL, next.Encode()))
	}
	writeJSON(w, http.StatusOK, all[start:end])
}

// handleRedeliver answers POST /app/hook/deliveries/{id}/attempts: 202,
// then the attempt's payload is delivered again under the same GUID and
// logged as a redelivery.
func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "Not Found", docDeliveries)
		return
	}
	s.mu.Lock()
	var found *hookAttempt
	for _, a := range s.hooks.log {
		if a.d.GetID() == id {
			found = a
		}
	}
	s.mu.Unlock()
	if found == nil {
		writeError(w, http.StatusNotFound, "Not Found", docDeliveries)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
	s.attempt(context.WithoutCancel(r.Context()), found.d.GetGUID(), found.d.GetEvent(), found.payload, true)
}

// deliveryRoutes adds the App's webhook-delivery endpoints to mux. Their
// handlers take s.mu themselves: a redelivery calls out to the webhook.
func (s *Server) deliveryRoutes(mux *http.ServeMux) {
	app := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s.appAuth(w, r) {
				h(w, r)
			}
		}
	}
	mux.HandleFunc("GET /app/hook/deliveries", app(s.handleListHookDeliveries))
	mux.HandleFunc("POST /app/hook/deliveries/{id}/attempts", app(s.handleRedeliver))
}

// payloadAction returns a payload's "action", as the deliveries API shows it.
func payloadAction(payload []byte) (string, bool) {
	var p struct {
		Action *string `json:"action"`
	}
	if json.Unmarshal(payload, &p) != nil || p.Action == nil {
		return "", false
	}
	return *p.Action, true
}

func ptr[T any](v T) *T { return &v }
