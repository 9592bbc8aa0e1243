package psdeploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/planetscale/planetscale-go/planetscale"

	"github.com/ternhq/tern/engine"
)

// Error classes of PlanetScale failures.
const (
	// Transient.
	ClassRetry        = "ps_retry"              // the API's "unprocessable": try again
	ClassInternal     = "ps_internal"           // 5xx or an answer not in the error shape
	ClassRateLimited  = "ps_rate_limited"       // HTTP 429
	ClassUnavailable  = "ps_unavailable"        // HTTP 502, 503, 504
	ClassMalformed    = "ps_malformed_response" // a body that is not JSON
	ClassStateTimeout = "ps_timeout"            // a branch or deploy request stuck in one state

	// Permanent.
	ClassNotFound       = "ps_not_found"
	ClassPermission     = "ps_permission"
	ClassInvalid        = "ps_invalid"
	ClassDeployFailed   = "ps_deploy_failed"
	ClassSchemaConflict = "ps_schema_conflict"
)

// statusKey carries a *statusBox in a request's context so the HTTP status
// of a planetscale-go call survives its error decoding (which drops it for
// bodies with an unknown code).
type statusKey struct{}

type statusBox struct{ code int }

// statusTransport records each response's status in the request's box.
type statusTransport struct{ base http.RoundTripper }

func (t statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		if b, ok := r.Context().Value(statusKey{}).(*statusBox); ok {
			b.code = resp.StatusCode
		}
	}
	return resp, err
}

// call runs one API call and returns its error classified, prefixed with
// op.
func call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	box := &statusBox{}
	err := f(context.WithValue(ctx, statusKey{}, box))
	if err == nil {
		return nil
	}
	return classify(fmt.Errorf("planetscale: %s: %w", op, err), box.code)
}

// classify wraps an API error in an *engine.RetryableError or
// *engine.PermanentError. status is the HTTP status when one was received
// (0 otherwise): 429 and 502-504 are transient whatever the body says, and
// a body without a known code is judged by its status. Errors that are not
// the API's (timeouts, lost connections, a cancelled context) go through
// engine.ClassifyMySQL, which knows them.
func classify(err error, status int) error {
	retry := func(class string) error { return &engine.RetryableError{Class: class, Err: err} }
	perm := func(class string) error { return &engine.PermanentError{Class: class, Err: err} }
	switch status {
	case http.StatusTooManyRequests:
		return retry(ClassRateLimited)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return retry(ClassUnavailable)
	}
	var pe *planetscale.Error
	if !errors.As(err, &pe) {
		return engine.ClassifyMySQL(err)
	}
	switch pe.Code {
	case planetscale.ErrRetry:
		return retry(ClassRetry)
	case planetscale.ErrInternal:
		return retry(ClassInternal)
	case planetscale.ErrResponseMalformed:
		return retry(ClassMalformed)
	case planetscale.ErrNotFound:
		return perm(ClassNotFound)
	case planetscale.ErrPermission:
		return perm(ClassPermission)
	case planetscale.ErrInvalid:
		return perm(ClassInvalid)
	}
	switch {
	case status >= 500:
		return retry(ClassInternal)
	case status == http.StatusRequestTimeout:
		return retry(ClassStateTimeout)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return perm(ClassPermission)
	case status == http.StatusNotFound:
		return perm(ClassNotFound)
	default:
		return perm(ClassInvalid)
	}
}
